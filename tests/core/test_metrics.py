"""`[metrics] port`: the App serves OpenMetrics; a scrape over HTTP after real jobs (the
simulator, the SQLite store) reads the store's figures and this process's counters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from bot.boundary import report_failure
from bot.config import Settings
from bot.model import JobState
from bot.ports import Invocation, Place, User
from tests.conftest import make_settings
from tests.fakes.chat import FakeChat

ALICE = User(platform="console", id="alice", name="Alice")
ROOM = Place(platform="console", channel="general", workspace="local")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Port 0: any free port (the endpoint says which), so tests never collide on one.
    return make_settings(tmp_path, metrics={"port": 0})


async def scrape(app: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint, by name and labels."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{app.metrics.port}/metrics",
                                  headers={"Accept": OPENMETRICS})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


async def test_a_scrape_after_jobs_reports_the_store_and_this_process(app: Any, sim: Any) -> None:
    chat = FakeChat("console")
    app.register_port(chat)
    sim.fail_next(503, 2, path_contains="/fal-ai/")  # fal refuses the submit twice, then takes it
    await app.bot.handle(Invocation(user=ALICE, place=ROOM, command="video",
                                    text="a paper boat --seconds 2 --seed 5 --model ltx-13b"), chat)
    video = await chat.wait_video(1)
    assert (await app.runner.wait(1)).state is JobState.DONE
    # A second job fal ends with an error of a type; an adapter's event fails unexpectedly.
    sim.options.error_rate = 1.0
    await app.bot.handle(Invocation(user=ALICE, place=ROOM, command="video",
                                    text="a paper boat --seconds 2 --seed 6 --model ltx-13b"), chat)
    assert (await app.runner.wait(2)).state is JobState.FAILED
    await report_failure(RuntimeError("boom"), chat_tell, "command video")

    samples = await scrape(app)
    model = "ltx-13b"  # the label is the catalog key of the model asked for
    assert samples[("ltx_bot_jobs", (("model", model), ("state", "done")))] == 1
    assert samples[("ltx_bot_jobs", (("model", model), ("state", "failed")))] == 1
    ledger = await app.store.ledger_rows()
    assert samples[("ltx_bot_credits_spent", ())] == sum(r["credits"] for r in ledger) == 4
    assert samples[("ltx_bot_usd_spent", ())] == pytest.approx(sum(r["usd"] for r in ledger))
    assert samples[("ltx_bot_queue_depth", (("where", "local"),))] == 0
    assert samples[("ltx_bot_queue_depth", (("where", "fal"),))] == 0
    assert samples[("ltx_bot_job_transitions_total", (("model", model), ("state", "done")))] == 1
    assert samples[("ltx_bot_fal_seconds_count", (("model", model),))] == 1
    assert samples[("ltx_bot_delivery_bytes_count", ())] == 1
    assert samples[("ltx_bot_delivery_bytes_sum", ())] == len(video.data or b"")
    assert samples[("ltx_bot_reencodes_total", ())] == 0
    assert samples[("ltx_bot_adapter_errors_total", (("context", "command"),))] == 1
    assert samples[("ltx_bot_fal_errors_total", (("type", "http_503"),))] == 2
    failed = {k[1]: v for k, v in samples.items() if k[0] == "ltx_bot_jobs_failed_total"}
    job = await app.store.get_job(2)
    assert job is not None and failed == {(("type", job.error_type),): 1}


async def chat_tell(text: str) -> None:
    return None
