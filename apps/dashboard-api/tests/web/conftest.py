from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.web.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Session,
    Watch,
    WebStack,
    require_tools,
    web_stack,
)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    require_tools()
    with web_stack(tmp_path_factory.mktemp("web")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(web: WebStack) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def session(browser: Browser, web: WebStack) -> Iterator[Session]:
    watch = Watch(web.url)
    opened = Session(browser, web, watch)
    try:
        yield opened
    finally:
        opened.close()
    assert watch.problems == [], "\n".join(watch.problems)
