"""Ray's start-up announcements are quiet unless something is wrong (issue 29 item 9)."""

from __future__ import annotations

import logging

import raynas.parallel.session as session


def test_attach_silences_the_token_auth_announcement_but_not_its_errors(monkeypatch):
    name = "ray._private.authentication.authentication_token_setup"
    logging.getLogger(name).setLevel(logging.NOTSET)
    started = []
    monkeypatch.setattr(session.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(session.ray, "init", lambda **kw: started.append(kw))
    assert session.attach(None, num_cpus=1) is True and started
    logger = logging.getLogger(name)
    assert not logger.isEnabledFor(logging.WARNING) and logger.isEnabledFor(logging.ERROR)
