"""The build: the extension imports, CUDA is reported honestly.

cuda_available() is checked against what can be seen without the extension: whether the build
has the CUDA backend (_core.cuda_built()) and whether an NVIDIA driver with a visible device is
present (the kernel driver's /proc/driver/nvidia/gpus entries, CUDA_VISIBLE_DEVICES)."""
import os

import fastspec


def _visible_nvidia_gpus():
    """GPUs the NVIDIA kernel driver lists, restricted by CUDA_VISIBLE_DEVICES when it is set."""
    gpus_dir = "/proc/driver/nvidia/gpus"
    n = len(os.listdir(gpus_dir)) if os.path.isdir(gpus_dir) else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v for v in visible.split(",") if v.strip()]
        if not ids or ids[0].strip().startswith("-"):
            return 0
        n = min(n, len(ids))
    return n


def test_cuda_available_matches_build_and_driver():
    avail = fastspec.cuda_available()
    assert isinstance(avail, bool)
    expected = fastspec._core.cuda_built() and _visible_nvidia_gpus() > 0
    assert avail == expected, (f"cuda_available() is {avail}; cuda_built() {fastspec._core.cuda_built()}, "
                               f"{_visible_nvidia_gpus()} NVIDIA GPU(s) visible to the driver")


def test_cuda_not_built_means_no_devices():
    if not fastspec._core.cuda_built():
        assert fastspec._core.cuda_device_count() == 0
        assert fastspec.cuda_available() is False


def test_errors_are_value_errors():
    assert issubclass(fastspec.FormatError, ValueError)
    assert issubclass(fastspec.ModelError, ValueError)
