"""`pimpi monitor` in a real browser while a real 2-rank render runs on a namespace cluster.

Headless Chromium (Debian's, driven by Selenium through Debian's chromedriver) loads the
page served from the head node; the test watches progress rise, an ETA appear, one row
per node, a frame that failed with its message, and the job end; a screenshot is saved.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.timeout(900)]

VCLUSTER = {"name": "mon", "subnet": "10.98.0.0/24", "nodes": 2}
HEAD = "10.98.0.2"
FRAMES = 24
SHOTS = Path(os.environ.get("PIMPI_SCREENSHOTS", "/tmp/pimpi-screenshots"))

RENDERER = """\
import sys, time
from pathlib import Path
from pimpi.render.png import write_png
import numpy as np
start, end, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
for frame in range(start, end + 1):
    time.sleep(1.2)
    if frame == 5:
        sys.exit(f"frame {frame}: texture wood.png is missing")
    y, x = np.mgrid[0:90, 0:160]
    image = np.stack([(x * 255 // 159), (y * 255 // 89), np.full_like(x, frame * 10 % 256)], -1).astype(np.uint8)
    write_png(out / f"frame_{frame:04d}.png", image)
"""


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (make sysdeps installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=412,1400"):  # a phone's width
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


SNAPSHOT = """
const job = document.querySelector('.job');
const all = (root, sel) => root ? Array.from(root.querySelectorAll(sel)).map(e => e.textContent) : [];
const img = job && job.querySelector('img.thumb');
return {count: job && job.querySelector('.count') ? job.querySelector('.count').textContent : '',
        state: job ? job.dataset.state : '', facts: all(job, '.facts div'), failures: all(job, '.failures li'),
        nodes: Array.from(document.querySelectorAll('#nodes tbody tr')).map(r => r.dataset.host + ' ' + r.textContent),
        thumb_width: img ? img.naturalWidth : 0};
"""


def test_page_follows_a_render_on_the_cluster_in_a_browser(vc, tmp_path):
    job_dir = vc.shared / "monjob"
    shutil.rmtree(job_dir, ignore_errors=True)
    job_dir.mkdir()
    (vc.shared / "monrender.py").write_text(RENDERER)
    monitor = subprocess.Popen(
        [sys.executable, "-m", "pimpi", "vcluster", "exec", "--name", vc.name, "node1", "--", sys.executable, "-m",
         "pimpi", "monitor", "--host", HEAD, "--port", "8765", "--interval", "2", "--hostfile", str(vc.hostfile),
         str(job_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    render = browser = None
    try:
        line = monitor.stdout.readline()
        assert line.startswith("pimpi monitor: http://"), line + monitor.stderr.read()
        url = line.split()[2]
        assert "?token=" in url  # served on the cluster's network: a token is required
        browser = _browser()
        browser.set_page_load_timeout(60)
        browser.get(url)
        deadline = time.monotonic() + 120  # the page is live (its nodes listed) before the job starts
        while not browser.execute_script(SNAPSHOT)["nodes"] and time.monotonic() < deadline:
            time.sleep(0.5)
        render = subprocess.Popen(
            [sys.executable, "-m", "pimpi", "vcluster", "exec", "--name", vc.name, "node1", "--", "pimpi", "run",
             "--hostfile", str(vc.hostfile), "-n", "2", "--timeout", "300", "--", "render", "cmd", "--frames",
             f"0-{FRAMES - 1}", "--chunk", "1", "--retries", "1", "--out", str(job_dir), "--expect",
             "frame_{frame:04d}.png", "--", sys.executable, str(vc.shared / "monrender.py"), "{start}", "{end}",
             "{out}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        counts, etas, nodes, failures, states = [], [], [], [], []
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            page = browser.execute_script(SNAPSHOT)  # one read of the page between two redraws
            if page["count"]:
                match = re.match(r"(\d+) / (\d+) done", page["count"])
                counts.append(int(match.group(1)))
                assert int(match.group(2)) == FRAMES, page
                etas += [t for t in page["facts"] if re.search(r"ETA \d", t)]
                failures += page["failures"]
                states.append(page["state"])
            nodes = page["nodes"]
            if states and states[-1] in ("done", "failed") and nodes and "asking" not in " ".join(nodes):
                break
            time.sleep(0.5)
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "monitor.png"))
        seen = f"counts {counts[-12:]} states {states[-3:]} nodes {nodes}"
        rendered = render.communicate(timeout=120)
        assert render.returncode == 1, (seen, rendered)  # frame 5 failed on both tries: the job fails, naming it
        assert "5" in rendered[0] + rendered[1]
        rises = [b for a, b in zip(counts, counts[1:]) if b > a]
        assert len(rises) >= 3 and counts[-1] == FRAMES - 1, counts  # seen rising, every other frame done
        assert etas, "no ETA was ever shown"
        assert any("texture wood.png is missing" in f for f in failures), failures
        assert states[-1] == "failed", states
        assert sorted(n.split()[0] for n in nodes) == sorted(vc.hostnames), nodes
        assert all("unreachable" not in n for n in nodes), nodes
        assert page["thumb_width"] == 160, page  # the newest frame, shown
    finally:
        if browser is not None:
            browser.quit()
        for proc in (render, monitor):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
    assert monitor.returncode is not None
    left = subprocess.run(["pgrep", "-f", "pimpi monitor --host " + HEAD], capture_output=True, text=True)
    assert left.stdout.strip() == "", "the monitor outlived its stop"
