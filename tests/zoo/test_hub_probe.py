"""The hub probe: an unreachable hub fails a hub id at once instead of after the download's
retries (five with backoff, about 25 s per file, close to a minute for a mistyped path)."""

from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError

import cfx.zoo.pretrained as pretrained
from cfx.errors import CheckpointError
from cfx.zoo import load_classifier
from cfx.zoo.pretrained import hub_unreachable  # the real one (tests/conftest.py fakes it)


def _no_network(url, timeout=None):
    raise ConnectionError("[Errno -2] Name or service not known")


def _not_cached(repo_id, filename):
    return None


def test_an_unreachable_hub_fails_before_the_download_and_its_retries(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no local folder named `someone`
    monkeypatch.setattr(pretrained, "hub_unreachable", hub_unreachable)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", _not_cached)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", _no_network)

    def download(repo_id, filename):
        raise AssertionError("hf_hub_download retries an unreachable hub: not to be called")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with pytest.raises(
        CheckpointError,
        match=r"`someone/brain-cnn` is no local folder .*hub cannot be reached "
        r"\(ConnectionError: \[Errno -2\] Name or service not known\)",
    ):
        load_classifier("someone/brain-cnn")


def test_the_probe_names_a_connection_failure():
    calls = []

    def metadata(url, timeout=None):
        calls.append((url, timeout))
        raise ConnectionError("refused")

    with pytest.MonkeyPatch.context() as m:
        m.setattr(huggingface_hub, "try_to_load_from_cache", _not_cached)
        m.setattr(huggingface_hub, "get_hf_file_metadata", metadata)
        assert hub_unreachable("owner/name", "config.json") == "ConnectionError: refused"
    assert calls == [("https://huggingface.co/owner/name/resolve/main/config.json", 10)]


def test_a_hub_that_answers_is_reachable_even_with_an_error():
    # a 404 (or 401) comes from the hub: hf_hub_download names it, without retrying
    def metadata(url, timeout=None):
        response = SimpleNamespace(status_code=404, headers={}, request=None)
        raise HfHubHTTPError("404 Client Error", response=response)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(huggingface_hub, "try_to_load_from_cache", _not_cached)
        m.setattr(huggingface_hub, "get_hf_file_metadata", metadata)
        assert hub_unreachable("owner/name", "config.json") is None
        m.setattr(huggingface_hub, "get_hf_file_metadata", lambda url, timeout=None: object())
        assert hub_unreachable("owner/name", "config.json") is None


def test_a_cached_file_or_offline_mode_sends_no_request(monkeypatch):
    # the download falls back to the cache (or, offline, reads it) without retrying
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", _no_network)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda r, f: "/cache/file")
    assert hub_unreachable("owner/name", "config.json") is None
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", _not_cached)
    assert hub_unreachable("owner/name", "config.json") is not None
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub_unreachable("owner/name", "config.json") is None
