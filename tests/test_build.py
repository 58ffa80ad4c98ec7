"""The build: the extension imports, CUDA is reported honestly."""
import fastspec


def test_cuda_available_is_a_bool_and_consistent():
    avail = fastspec.cuda_available()
    assert isinstance(avail, bool)
    if not fastspec._core.cuda_built():
        assert avail is False  # no backend, no devices
    assert avail == (fastspec._core.cuda_device_count() > 0)


def test_errors_are_value_errors():
    assert issubclass(fastspec.FormatError, ValueError)
    assert issubclass(fastspec.ModelError, ValueError)
