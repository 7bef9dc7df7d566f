"""The operator's console at ``/console/``: overview, jobs, a job's evidence, dead
letters and the guard, served by the web process.

Server-rendered Jinja pages with a little JavaScript (``static/console.js``); every
file it needs ships in this package (no CDN). Users and roles come from
``CERTSMS_CONSOLE_USERS`` (:mod:`.users`); sessions, CSRF and the login throttle are
in :mod:`.session`; the numbers behind the pages in :mod:`.data`; the pages in
:mod:`.views`. Without users configured every console URL answers 404 with a page
saying how to turn it on.
"""

from certsms.worker.web.console.views import bp

__all__ = ["bp"]
