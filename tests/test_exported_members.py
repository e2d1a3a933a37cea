import inspect

import lastro


def test_all_names_are_importable() -> None:
    """Every name in `lastro.__all__` exists on the package."""
    for name in lastro.__all__:
        assert hasattr(lastro, name), name


def test_public_surface_is_curated() -> None:
    """The package exports exactly `__all__`, sorted, and no internals (submodules aside)."""
    public = {
        name
        for name in dir(lastro)
        if not name.startswith("_") and not inspect.ismodule(getattr(lastro, name))
    }
    assert public == set(lastro.__all__) - {"__version__"}
    assert lastro.__all__ == sorted(lastro.__all__)
