"""The dashboard in headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
served by a real `lvlup api` process reading views the Postgres sink code wrote; the login
form sets an HttpOnly cookie (no key in any URL), then every panel loads without an error
and the learning panel shows the agents' data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from api.auth import Scope, create_key
from infra.bench.sample import SampleStream
from infra.process import free_port
from schemas.codec import load_codec
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch, ConsumedRecord

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PANELS = ("health", "learning", "custody", "security", "proposals", "cost", "serving")

# The same sample into a chdb directory, in a child process (the test process holds no chdb
# session, so the API opens the directory itself: nobody owns it).
CH_FILL = """
import sys
from pathlib import Path
from infra.bench.sample import SampleStream
from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.migrate import migrate_up
from sinks.clickhouse.writer import ClickHouseWriter
from sinks.records import Batch, ConsumedRecord
batch = Batch()
for offset, (record_type, record) in enumerate(SampleStream(seed=3).records(800)):
    batch.add(ConsumedRecord("lvlup.sample", 0, offset, 0, record_type, record))
client = ChdbClient(Path(sys.argv[1]))
migrate_up(client, "lvlup")
ClickHouseWriter(client, "lvlup").write("dashboard-test", batch)
client.close()
"""


@pytest.fixture
def views_db(pg_db):
    """A migrated scratch database holding the views of 800 sample records, and a read key."""
    codec, batch = load_codec(), Batch()
    for offset, (record_type, record) in enumerate(SampleStream(seed=3).records(800)):
        _, logical = codec.decode(codec.encode(record_type, record), logical=True)
        batch.add(ConsumedRecord("lvlup.sample", 0, offset, 0, record_type, logical))
    engine = create_engine(pg_db)
    PostgresWriter(engine, build_projections()).write("dashboard-test", batch)
    _, token = create_key(engine, "dashboard test", [Scope.READ])
    engine.dispose()
    return pg_db, token


@pytest.fixture
def api_url(views_db, tmp_path):
    """``(base URL, read token)`` of a running ``lvlup api`` on the views database."""
    db_url, token = views_db
    subprocess.run([sys.executable, "-c", CH_FILL, str(tmp_path / "ch")], cwd=ROOT, check=True,
                   timeout=120)
    port = free_port()
    env = {**os.environ, "LVLUP_POSTGRES__URL": db_url,
           "LVLUP_CLICKHOUSE__CHDB_PATH": str(tmp_path / "ch")}
    log = tmp_path / "api.log"
    proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "api", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass  # not listening yet
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url, token
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.skipif(not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
                    reason="needs Debian's chromium and chromium-driver (make setup installs "
                           "them as root: infra/install-browser.sh)")
def test_the_dashboard_shows_the_views_in_a_browser(api_url, tmp_path):
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(seconds: float) -> WebDriverWait:
        # a form submit loads a new page: an element found on the old one goes stale between
        # find_element and is_displayed (the race CI met); the wait polls again instead
        return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1100",
                 f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    url, token = api_url
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"{url}/dashboard")
        login = wait(60).until(
            lambda d: d.find_element(By.ID, "login") if d.find_element(By.ID, "login")
            .is_displayed() else None)
        login.find_element(By.ID, "key").send_keys("lvlup_wrong_key")
        login.find_element(By.ID, "login-submit").click()
        wait(30).until(
            lambda d: d.find_element(By.ID, "login-error").is_displayed())
        assert token not in driver.current_url
        driver.find_element(By.ID, "key").send_keys(token)
        driver.find_element(By.ID, "login-submit").click()
        wait(30).until(lambda d: d.current_url.rstrip("/") == f"{url}/dashboard")
        cookie = driver.get_cookie("lvlup_session")
        assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert driver.execute_script("return document.cookie") == ""
        wait(60).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        states = {p: driver.find_element(By.ID, p).get_attribute("data-loaded") for p in PANELS}
        texts = {p: driver.find_element(By.ID, p).text for p in PANELS}
        assert states == dict.fromkeys(PANELS, "true"), texts
        assert not driver.find_element(By.ID, "login").is_displayed()
        learning = driver.find_element(By.ID, "learning")
        assert learning.find_elements(By.TAG_NAME, "td"), texts["learning"]
        assert any(agent in texts["learning"] for agent in ("imperium", "guardian", "sandbox",
                                                             "conquest")), texts["learning"]
        # how the model was served (ClickHouse inference_serving_day): the sample's answers
        serving = driver.find_element(By.ID, "serving")
        assert serving.find_elements(By.TAG_NAME, "td"), texts["serving"]
        assert "peak_in_service" in texts["serving"], texts["serving"]
        shot = os.environ.get("LVLUP_DASHBOARD_SCREENSHOT") or str(tmp_path / "dashboard.png")
        assert driver.save_screenshot(shot)
    finally:
        driver.quit()
