"""`benchmarks.orders.profile.summarize_profile`: py-spy's collapsed stacks into cost centres and shares."""

from __future__ import annotations

from benchmarks.orders.profile import summarize_profile

RAW = "\n".join(
    [
        "run (asyncio/runners.py:118);__call__ (lastro/http/request_id.py:40);uuid4 (uuid.py:723) 3",
        "run (asyncio/runners.py:118);__call__ (lastro/http/access_log.py:52) 2",
        "run (asyncio/runners.py:118);get_order (examples/orders/routes.py:80);do_execute "
        "(sqlalchemy/engine/default.py:1192) 5",
        "_worker (concurrent/futures/thread.py:81) 7",
    ]
)


def test_the_stack_share_counts_samples_whose_running_frame_is_lastros_stack() -> None:
    """Samples running in the request stack (request id, its uuid4, the access log) are its share."""
    assert summarize_profile(RAW)["stack_self_pct"] == 50.0


def test_samples_of_idle_threads_are_left_out() -> None:
    """A thread-pool worker waiting on its queue is neither counted nor in a share."""
    summary = summarize_profile(RAW)
    assert (summary["samples"], summary["idle_samples_left_out"]) == (10, 7)


def test_database_frames_are_their_cost_centre() -> None:
    """A sample running in SQLAlchemy counts for the database, whoever called it."""
    assert summarize_profile(RAW)["cost_centres_pct"]["DB: SQLAlchemy + driver"] == 50.0


def test_samples_of_threads_of_their_own_are_their_share() -> None:
    """A sample of a thread started by lastro (the broadcast's reader) counts in the threads' share."""
    raw = RAW + "\nThread._bootstrap (threading.py:1002);Thread.run (threading.py:982);_follow (x.py:1) 10"
    assert summarize_profile(raw)["threads_pct"] == 50.0
