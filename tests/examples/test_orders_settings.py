"""The orders service's own settings: the audit log's defaults and bounds."""

from __future__ import annotations

import pytest

from examples.orders.settings import OrdersSettings
from lastro import ConfigurationError, get_settings


def test_audit_defaults() -> None:
    """100 entries a batch, written at the latest 0.5 s after the oldest, 10,000 held at most."""
    settings = get_settings(OrdersSettings)
    assert (settings.AUDIT_BATCH_SIZE, settings.AUDIT_MAX_WAIT, settings.AUDIT_MAX_PENDING) == (
        100,
        0.5,
        10_000,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUDIT_BATCH_SIZE", "0"),
        ("AUDIT_BATCH_SIZE", "10001"),
        ("AUDIT_MAX_WAIT", "-1"),
        ("AUDIT_MAX_WAIT", "61"),
    ],
)
def test_audit_settings_out_of_bounds_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """A value outside its bounds is a ConfigurationError naming the setting."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        get_settings(OrdersSettings)


def test_audit_max_pending_must_hold_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUDIT_MAX_PENDING below AUDIT_BATCH_SIZE is refused: the queue could never hold a whole batch."""
    monkeypatch.setenv("AUDIT_BATCH_SIZE", "500")
    monkeypatch.setenv("AUDIT_MAX_PENDING", "100")
    with pytest.raises(ConfigurationError, match="AUDIT_MAX_PENDING"):
        get_settings(OrdersSettings)
