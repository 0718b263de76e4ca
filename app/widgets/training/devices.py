"""The panel's device choice: the device combo, the GPUs box and the fused-kernels note.

Listing the devices imports torch (and, with a GPU, starts CUDA): seconds the editor must not
spend before its first paint (issue 20). The combo starts with "auto" and the device the
project names; ``fill()`` lists the rest in a worker thread and puts them in when known,
and not before the window's first paint when the main window says when that is
(``wait_for``): an import of torch in a thread holds the interpreter's lock for much of
its seconds, and would slow the GUI thread's first paint on any number of cores.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox

from ...engine.devices import DeviceInfo, list_devices
from ..threads import run_in_thread


class DeviceChoice(QObject):
    """``combo`` (data: the device id), ``gpus_box`` (processes for a multi-GPU run) and
    ``kernels_note``; ``listed()`` once the devices are known."""

    listed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setObjectName("device")
        self.combo.addItem("auto (best available)", "auto")
        self.gpus_box = QSpinBox()
        self.gpus_box.setObjectName("gpus")
        self.kernels_note = QLabel("Fused GPU kernels: looking for a CUDA device…")
        self.kernels_note.setWordWrap(True)
        self.kernels_note.setEnabled(False)
        self.devices: list[DeviceInfo] | None = None  # None until listed
        self.gpus = 0
        self._wanted = "auto"
        self._held = False  # fill() waits for the first paint (wait_for)
        self._fill_asked = False
        self._filling = False
        self._show_gpus(0)

    def wait_for(self, first_paint) -> None:
        """Hold ``fill()`` until ``first_paint`` (a ``FirstPaint``) has seen the window painted."""
        self._held = first_paint.hold(self, self._release)

    def fill(self) -> None:
        """List the devices off the GUI thread (once; after the first paint when held)."""
        if self._held:
            self._fill_asked = True
        elif self.devices is None and not self._filling:
            self._filling = True
            run_in_thread(list_devices, self, self._done, name="netcanvas-devices")

    def _done(self, future) -> None:
        self._filling = False  # (a listing that failed is tried again by the next fill)
        self._listed(future.result())

    def fill_now(self) -> None:
        """List the devices here and now (a run is about to start: it needs them anyway)."""
        if self.devices is None:
            self._listed(list_devices())

    def _release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._fill_asked:
            self.fill()

    def set_device(self, device: str) -> None:
        """Show ``device`` (a project's ``training.device``) as chosen; one not on this
        machine is added, said so, once the devices are known."""
        self._wanted = str(device)
        index = self.combo.findData(self._wanted)
        if index < 0:
            suffix = " (not on this machine)" if self.devices is not None else ""
            self.combo.addItem(f"{self._wanted}{suffix}", self._wanted)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)

    def _listed(self, devices: list[DeviceInfo]) -> None:
        if self.devices is not None:
            return
        self.devices = devices
        while self.combo.count() > 1:  # (a device named before the list came is placed again)
            self.combo.removeItem(1)
        for d in devices:
            self.combo.addItem(d.label(), d.id)
        self.set_device(self._wanted)
        self._show_gpus(sum(d.kind == "cuda" for d in devices))
        cuda = [d for d in devices if d.kind == "cuda"]
        self.kernels_note.setText(f"Fused GPU kernels: available on {cuda[0].name} (setting: kernels)." if cuda
                                  else "Fused GPU kernels: not used (no CUDA device here).")
        self.listed.emit()

    def _show_gpus(self, gpus: int) -> None:
        self.gpus = gpus
        self.gpus_box.setRange(1, max(1, gpus))
        self.gpus_box.setEnabled(gpus > 1)
        self.gpus_box.setToolTip(
            "Train on this many GPUs at once: one process per GPU, DistributedDataParallel (nccl). "
            + (f"This machine has {gpus} CUDA GPUs." if gpus > 1 else
               f"This machine has {gpus or 'no'} CUDA GPU{'s' if gpus != 1 else ''}: one process trains. "
               "(netcanvas train FILE --nproc N runs several CPU processes too.)"))
