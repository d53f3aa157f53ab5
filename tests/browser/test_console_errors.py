"""Issue 18, point 1: a browser test fails on any console error. The `page` fixture collects them;
this shows it sees both kinds (an error logged, an exception no script caught) and that a page of
the console logs none."""

import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_page_fixture_collects_logged_errors_and_uncaught_exceptions(page, platform_admin):
    sign_in(page, platform_admin.username)
    assert page.console_errors.errors == []
    page.evaluate("console.error('logged on purpose')")
    page.evaluate("setTimeout(() => { throw new Error('thrown on purpose'); })")
    for _ in range(100):  # the thrown error comes when the timer runs
        if any("thrown on purpose" in error for error in page.console_errors.errors):
            break
        page.wait_for_timeout(20)
    assert any("logged on purpose" in error for error in page.console_errors.errors)
    assert any("thrown on purpose" in error for error in page.console_errors.errors)
    page.console_errors.expect("logged on purpose")
    page.console_errors.expect("thrown on purpose")
    with pytest.raises(AssertionError, match="expected a console error"):
        page.console_errors.expect("never logged")
