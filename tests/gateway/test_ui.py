"""The /ui dashboard: what the served files hold, and (when Chromium is installed) a headless
browser run that opens a job's page and draws its loss/accuracy charts from the metric history."""
from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.gateway.conftest import Trained, make_token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_dashboard_files_are_public_and_self_contained(stack) -> None:  # noqa: ANN001
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as c:
        page = c.get("/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
        assert '<script src="/ui/app.js"' in page.text and 'href="/ui/style.css"' in page.text
        js = c.get("/ui/app.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        css = c.get("/ui/style.css")
        assert css.headers["content-type"].startswith("text/css")
        for missing in ("/ui/nope.js", "/ui/..%2Fapp.py", "/ui/%2E%2E"):
            assert c.get(missing).status_code == 404
    code = js.text
    # What the page needs: the token in sessionStorage sent as a bearer header, the job list,
    # the job's status, metric history and live events (SSE over fetch), versions, deployments.
    for needle in ("sessionStorage", "Authorization: `Bearer ${token()}`", "/api/training/jobs",
                   "/api/v1/training/train-agent/${enc(jobId)}/metrics", "/events?afterSequence=",
                   "/versions?limit=100", "/deployments?limit=20", "/api/v1/agents", 'createElementNS(SVG_NS',
                   '"data-series"'):
        assert needle in code, needle
    # Nothing from outside this origin.
    assert not re.search(r"https?://", (page.text + code + css.text).replace("http://www.w3.org/2000/svg", ""))


def _chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--window-size=1200,900", *args, url],
        capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_headless_chromium_draws_a_jobs_charts(stack, trained: Trained, tmp_path: Path) -> None:  # noqa: ANN001
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as c:
        token = make_token(c, stack.admin_token, ["training:view"])
    job = trained.jobs[0]
    # The token travels in the fragment (never sent to the server); the page stores it and drops it.
    url = f"{stack.gateway_url}/ui#/job/{quote(job)}?token={quote(token)}"
    dom = _chromium(url, tmp_path / "profile-dom", "--dump-dom").stdout
    assert 'data-state="ready"' in dom, dom[-2000:]
    assert 'data-job-status="completed"' in dom and job in dom
    for chart, names in (("loss", ("loss", "validation_loss")), ("accuracy", ("accuracy", "validation_accuracy"))):
        assert f'data-chart="{chart}"' in dom
        for name in names:
            path = re.search(rf'<path class="series" d="([^"]+)"[^>]*data-series="{name}" data-points="(\d+)"', dom)
            assert path, name
            assert int(path.group(2)) == trained.epochs  # one point per epoch
            assert path.group(1).count("L") == trained.epochs - 1
    assert token not in dom  # removed from the address bar and never rendered

    shot = tmp_path / "job.png"
    _chromium(url, tmp_path / "profile-shot", f"--screenshot={shot}")
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 900)
    colors = image.getcolors(maxcolors=1 << 20)
    # A blank page is one or two colours; the page with its charts has many (lines, text, badges).
    assert colors is not None and len(colors) > 50
    background = max(colors)[1]
    # The series colours of the charts are on screen (app.js COLORS).
    pixels = {rgb for _, rgb in colors}
    assert {(0x2f, 0x6f, 0xed), (0xe8, 0x59, 0x0c), (0x1a, 0x7f, 0x4b), (0x9c, 0x36, 0xb5)} <= pixels
    assert sum(n for n, rgb in colors if rgb != background) > 0.05 * 1200 * 900


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_headless_chromium_asks_for_a_token_first(stack, tmp_path: Path) -> None:  # noqa: ANN001
    dom = _chromium(f"{stack.gateway_url}/ui#/agents", tmp_path / "profile", "--dump-dom").stdout
    assert 'data-state="token"' in dom and 'name="token"' in dom and 'type="password"' in dom


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_headless_chromium_lists_jobs_and_an_agents_versions_and_deployments(stack, trained: Trained,  # noqa: ANN001
                                                                            tmp_path: Path) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as c:
        token = make_token(c, stack.admin_token, ["training:view"])
        deployments = c.get(f"/api/v1/training/models/{trained.agent}/deployments",
                            headers={"Authorization": f"Bearer {token}"}).json()["data"]["deployments"]
    jobs = _chromium(f"{stack.gateway_url}/ui#/jobs?token={quote(token)}", tmp_path / "p1", "--dump-dom").stdout
    assert 'data-state="ready"' in jobs and 'data-view="jobs"' in jobs
    for job in trained.jobs:
        assert f'<tr data-job="{job}">' in jobs
    agent = _chromium(f"{stack.gateway_url}/ui#/agent/{quote(trained.agent)}?token={quote(token)}",
                      tmp_path / "p2", "--dump-dom").stdout
    assert 'data-state="ready"' in agent
    assert re.findall(r'<tr data-version="([^"]+)">', agent) == trained.versions[::-1]
    # Which version serves, and why, as the registry says.
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as c:
        versions = c.get(f"/api/v1/training/models/{trained.agent}/versions",
                         headers={"Authorization": f"Bearer {token}"}).json()["data"]["versions"]
    serving = [v for v in versions if v["serving"] == "serving"]
    assert len(serving) == 1 and serving[0]["servingReason"]
    assert re.findall(r'<td data-serving="([^"]*)">', agent) == [v["serving"] for v in versions]
    assert serving[0]["servingReason"] in agent
    assert re.findall(r'<tr data-deployment="([^"]+)">', agent) == [d["deploymentId"] for d in deployments]
    for job in trained.jobs:
        assert f'href="#/job/{job}"' in agent


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_aliases_and_tags_are_set_moved_and_deleted_from_the_dashboard(stack, trained: Trained) -> None:  # noqa: ANN001
    """A real browser clicks through /ui's forms; the registry (read back over REST) has the change."""
    from playwright.sync_api import sync_playwright

    first, second = trained.versions
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as c:
        token = make_token(c, stack.admin_token, ["training:view", "models:deploy"])
        headers = {"Authorization": f"Bearer {token}"}

        def aliases() -> dict[str, str]:
            listed = c.get(f"/api/v1/training/models/{trained.agent}/aliases", headers=headers).json()["data"]
            return {a["alias"]: a["versionId"] for a in listed["aliases"]}

        def tags(version: str) -> dict[str, str]:
            return c.get(f"/api/v1/training/models/{trained.agent}/versions/{version}",
                         headers=headers).json()["data"]["tags"]

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{stack.gateway_url}/ui#/agent/{quote(trained.agent)}?token={quote(token)}")
            page.wait_for_selector('body[data-state="ready"]')

            def submit(form: str, **fields: str) -> None:
                for name, value in fields.items():
                    selector = f'form[data-form="{form}"] [name="{name}"]'
                    if name == "version":
                        page.select_option(selector, value)
                    else:
                        page.fill(selector, value)
                page.click(f'form[data-form="{form}"] button[type="submit"]')
                page.wait_for_selector('body[data-state="ready"]')

            submit("alias", alias="ui-champion", version=second)
            page.wait_for_selector('tr[data-alias="ui-champion"]')
            assert aliases()["ui-champion"] == second
            submit("alias", alias="ui-champion", version=first)  # moving it
            page.wait_for_selector(f'td[data-alias-version="ui-champion"]:text("{first}")')
            assert aliases()["ui-champion"] == first

            submit("tag", version=second, set="stage=review")
            page.wait_for_selector(f'td[data-tags="{second}"]:text("stage=review")')
            assert tags(second)["stage"] == "review"
            submit("tag", version=second, set="", remove="stage")
            # The page may still read "ready" from before the click: wait for the registry's answer.
            deadline = time.monotonic() + 15
            while "stage" in tags(second) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "stage" not in tags(second)

            page.click('button[data-delete-alias="ui-champion"]')
            page.wait_for_selector('tr[data-alias="ui-champion"]', state="detached")
            assert "ui-champion" not in aliases()

            submit("alias", alias="Not An Alias", version=first)  # the registry's rule, shown on the page
            page.wait_for_selector("[data-edit-status]:not([hidden])")
            assert "must match" in page.inner_text("[data-edit-status]")
            browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_three_runs_are_compared_from_the_jobs_list(stack, trained: Trained) -> None:  # noqa: ANN001
    """Tick three completed jobs, press Compare: one overlaid chart per metric with a line per run
    (as many points as the run has epochs of it) and every pair's tests with Holm-adjusted p."""
    from playwright.sync_api import sync_playwright

    ids = [*trained.jobs, trained.seed001_job]
    with httpx.Client(base_url=stack.gateway_url, timeout=120) as c:
        token = make_token(c, stack.admin_token, ["training:view", "training:evaluate"])
        headers = {"Authorization": f"Bearer {token}"}
        points = {job: c.get(f"/api/v1/training/train-agent/{job}/metrics", params={"pageSize": 10000},
                             headers=headers).json()["data"]["points"] for job in ids}
        expected = c.post("/api/v1/functions/compareTrainingRuns", headers=headers,
                          json={"run_ids": ids, "statistical_tests": True}).json()["data"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{stack.gateway_url}/ui#/jobs?token={quote(token)}")
        page.wait_for_selector('body[data-state="ready"]')
        assert page.is_disabled("button[data-compare]")
        for job in ids:
            for _ in range(3):  # the list is redrawn every 3 s; a tick on a replaced row is repeated
                page.check(f'input[data-select="{job}"]')
                if page.is_checked(f'input[data-select="{job}"]'):
                    break
        page.wait_for_selector('button[data-compare]:text("Compare selected (3)")')
        page.click("button[data-compare]")
        page.wait_for_selector('table[data-view="pairwise"]')
        page.wait_for_selector('body[data-state="ready"]')
        for metric in ("loss", "validation_loss", "accuracy", "validation_accuracy"):
            lines = page.eval_on_selector_all(
                f'svg[data-chart="{metric}"] path.series',
                "els => els.map(e => [e.dataset.series, Number(e.dataset.points), e.getAttribute('stroke')])")
            assert [name for name, _, _ in lines] == ids, metric
            assert len({color for _, _, color in lines}) == 3  # one colour per run
            for job, count, _ in lines:
                assert count == len({pt["epoch"] for pt in points[job] if pt["name"] == metric and pt["epoch"] > 0})
        assert [n for _, n, _ in page.eval_on_selector_all('svg[data-chart="loss"] path.series',
                                                           "els => els.map(e => [0, Number(e.dataset.points), 0])")
                ] == [trained.epochs, trained.epochs, 3]
        rows = page.eval_on_selector_all("tr[data-pair]", "els => els.map(e => [e.dataset.pair, "
                                         "e.querySelector('[data-adjusted]').textContent, e.dataset.significant])")
        pairs = expected["statistical_analysis"]["pairwise"]
        assert len(rows) == len(pairs) == 3 * 3  # three pairs of three runs on accuracy, f1 and log loss
        accuracy = {tuple(r[0].split(":")[1:]) for r in rows if r[0].startswith("accuracy:")}
        assert {frozenset(pair) for pair in accuracy} == {frozenset((a, b)) for k, a in enumerate(ids) for b in ids[k + 1:]}
        for (key, adjusted, significant), pair in zip(rows, pairs):
            assert key == f"{pair['metric']}:{pair['job_a']}:{pair['job_b']}"
            assert float(adjusted) == pytest.approx(pair["adjusted_p_value"], abs=1e-4)
            assert significant == ("yes" if pair["adjusted_p_value"] < pair["alpha"] else "no")
        assert "holm-adjusted" in page.inner_text("main")
        browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_headless_chromium_lists_sweeps_and_a_sweeps_trials(stack, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.intents import make_examples

    with httpx.Client(base_url=stack.gateway_url, timeout=30,
                      headers={"Authorization": f"Bearer {stack.admin_token}"}) as c:
        token = make_token(c, stack.admin_token, ["training:view"])
        sweep_id = c.post("/api/v1/sweeps", json={
            "agentId": "ui-sweep", "maxTrials": 3, "parallelism": 3, "seed": 1, "objective": {"metric": "validation_loss"},
            "space": [{"field": "learningRate", "range": {"low": 0.001, "high": 0.3, "log": True}},
                      {"field": "epochs", "choices": [1, 2]}],
            "examples": make_examples(8, seed=3)}).json()["data"]["sweepId"]
        deadline = time.monotonic() + 120
        while (sweep := c.get(f"/api/v1/sweeps/{sweep_id}").json()["data"])["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(1)
    listed = _chromium(f"{stack.gateway_url}/ui#/sweeps?token={quote(token)}", tmp_path / "p1", "--dump-dom").stdout
    assert 'data-view="sweeps"' in listed and f'<tr data-sweep="{sweep_id}">' in listed, listed[-2000:]
    page = _chromium(f"{stack.gateway_url}/ui#/sweep/{quote(sweep_id)}?token={quote(token)}", tmp_path / "p2",
                     "--dump-dom").stdout
    assert 'data-state="ready"' in page and f'data-sweep-state="{sweep["state"]}"' in page, page[-2000:]
    assert re.findall(r'<tr data-trial="(\d+)"', page) == ["0", "1", "2"]
    for trial in sweep["trials"]:
        assert f'href="#/job/{trial["jobId"]}"' in page
    # One scatter per searched parameter, one point per finished trial, placed by the trial's value
    # (log scale for the log range) and objective.
    scatters = dict(re.findall(r'<svg[^>]*data-scatter="([^"]+)"[^>]*>(.*?)</svg>', page, re.S))
    assert set(scatters) == {"learning_rate", "epochs"}, page[-3000:]
    trials = {t["number"]: t for t in sweep["trials"]}
    assert all(t["objective"] is not None for t in trials.values()), trials

    def points(field: str) -> dict[int, tuple[float, float]]:
        circles = [dict(re.findall(r'([\w-]+)="([^"]*)"', c)) for c in re.findall(r"<circle[^>]*>", scatters[field])]
        return {int(c["data-trial"]): (float(c["cx"]), float(c["cy"])) for c in circles}

    lr = points("learning_rate")
    assert set(lr) == set(trials)
    by_lr = sorted(trials, key=lambda n: trials[n]["params"]["learning_rate"])
    assert [lr[n][0] for n in by_lr] == sorted(lr[n][0] for n in by_lr)
    lo, mid, hi = (math.log10(trials[n]["params"]["learning_rate"]) for n in by_lr)
    x_lo, x_mid, x_hi = (lr[n][0] for n in by_lr)
    assert (x_mid - x_lo) / (x_hi - x_lo) == pytest.approx((mid - lo) / (hi - lo), abs=0.02)
    by_objective = sorted(trials, key=lambda n: trials[n]["objective"])
    assert [lr[n][1] for n in by_objective] == sorted((lr[n][1] for n in by_objective), reverse=True)
    epochs = points("epochs")
    assert set(epochs) == set(trials)
    for a in trials:
        for b in trials:
            if trials[a]["params"]["epochs"] < trials[b]["params"]["epochs"]:
                assert epochs[a][0] < epochs[b][0]
            elif trials[a]["params"]["epochs"] == trials[b]["params"]["epochs"]:
                assert epochs[a][0] == epochs[b][0]
    best = sweep["bestTrial"]["number"]
    assert re.search(rf'<circle[^>]*data-trial="{best}"[^>]*data-best="true"', scatters["learning_rate"])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_polling_the_jobs_list_sends_if_none_match_and_spends_no_budget_on_unchanged_answers(
        stack, trained: Trained) -> None:  # noqa: ANN001
    """The jobs view polls every 3 s: each poll names the ETag of the answer it shows, an unchanged
    list comes back 304 (and the page keeps showing it), and only full answers are charged."""
    from playwright.sync_api import sync_playwright

    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        token = make_token(c, stack.admin_token, ["training:view"], rateLimitPerHour=50)
    seen: list[tuple[int, str | None, str | None]] = []  # (status, If-None-Match sent, ETag received)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("response", lambda r: seen.append((r.status, r.request.headers.get("if-none-match"),
                                                   r.headers.get("etag")))
                if r.url.endswith("/api/training/jobs") else None)
        page.goto(f"{stack.gateway_url}/ui#/jobs?token={quote(token)}")
        page.wait_for_selector('body[data-state="ready"]')
        deadline = time.monotonic() + 60
        while len(seen) < 4 and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        assert page.query_selector(f'tr[data-job="{trained.jobs[0]}"]') is not None  # still drawn after 304s
        assert page.is_hidden("p.error")
        browser.close()
    assert len(seen) >= 4 and seen[0][0] == 200 and seen[0][1] is None
    for (_, _, previous_tag), (status, sent, tag) in zip(seen, seen[1:]):
        assert sent == previous_tag and status in (200, 304)
        assert status == 200 or tag == previous_tag
    assert any(status == 304 for status, _, _ in seen)
    full = sum(1 for status, _, _ in seen if status == 200)
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        r = c.get("/api/training/jobs", headers={"Authorization": f"Bearer {token}"})
    assert r.headers["X-RateLimit-Remaining"] == str(50 - full - 1)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_a_long_jobs_page_asks_for_its_history_once(long_history_stack) -> None:  # noqa: ANN001
    """A job whose history spans three 10k pages: the job page makes exactly one metrics request
    (the sampled history of the charted names) and draws one point per epoch of each curve."""
    from playwright.sync_api import sync_playwright

    from tests.gateway.conftest import LONG_JOB

    gateway, token = long_history_stack.gateway_url, long_history_stack.admin_token
    with httpx.Client(base_url=gateway, timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
        url = f"/api/v1/training/train-agent/{LONG_JOB}/metrics"
        first = c.get(url, params={"pageSize": 10000}).json()["data"]
        assert first["nextPageToken"]  # more than one page of history
        points, token_ = list(first["points"]), first["nextPageToken"]
        while token_:
            page_ = c.get(url, params={"pageSize": 10000, "pageToken": token_}).json()["data"]
            points += page_["points"]
            token_ = page_.get("nextPageToken")
    epochs = {name: len({p["epoch"] for p in points if p["name"] == name and p["epoch"] > 0})
              for name in ("loss", "validation_loss", "accuracy", "validation_accuracy")}
    assert len(points) > 20_000 and all(n > 1 for n in epochs.values())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{gateway}/ui#/job/{quote(LONG_JOB)}?token={quote(token)}")
        page.wait_for_selector('body[data-state="ready"] svg[data-chart="accuracy"] path.series')
        drawn = dict(page.eval_on_selector_all(
            "path.series", "els => els.map(e => [e.dataset.series, Number(e.dataset.points)])"))
        browser.close()
    metric_requests = [u for u in requests if "/metrics" in u]
    assert len(metric_requests) == 1, metric_requests
    assert "maxPointsPerMetric=" in metric_requests[0] and "pageToken" not in metric_requests[0]
    # 1000 sampled points of each name's ~6,250 cover each of its epochs (25 points an epoch).
    assert drawn == epochs
