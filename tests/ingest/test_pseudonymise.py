"""Pseudonymisation: stable under one key, different under another, refuses real data without a key."""

from pathlib import Path

import pandas as pd
import pytest

from cara_eval.ingest.pseudonymise import PSEUDONYM_HEX_CHARS, PseudonymisationKeyError, pseudonymise, resolve_key

REPO = Path(__file__).resolve().parents[2]
IDS = pd.Series(["PNC/12345A", " PNC/12345A ", "PNC/99999Z", None])


def settings(tmp_path, key_file=None):
    return {
        "key_env": "CARA_TEST_PSEUDO_KEY",
        "key_file": str(key_file or tmp_path / "absent.key"),
        "synthetic_test_key": "public-test-key-not-secret",
    }


def test_same_key_same_pseudonym_and_whitespace_ignored():
    key = b"k" * 32
    first, again = pseudonymise(IDS, key, "offender", "dorset"), pseudonymise(IDS, key, "offender", "dorset")
    assert first.tolist() == again.tolist()
    assert first[0] == first[1] != first[2]
    assert pd.isna(first[3])
    assert first[0].startswith("o_") and len(first[0]) == 2 + PSEUDONYM_HEX_CHARS
    int(first[0][2:], 16)


def test_pseudonym_depends_on_key_kind_and_force():
    base = pseudonymise(IDS[:1], b"k" * 32, "offender", "dorset")[0]
    assert pseudonymise(IDS[:1], b"j" * 32, "offender", "dorset")[0] != base
    assert pseudonymise(IDS[:1], b"k" * 32, "victim", "dorset")[0][2:] != base[2:]
    assert pseudonymise(IDS[:1], b"k" * 32, "offender", "norfolk")[0] != base
    assert "12345" not in base


def test_known_value_guards_against_silent_algorithm_changes():
    # HMAC-SHA256(key, "case:dorset:55/1234/20"), first 16 hex characters.
    import hashlib
    import hmac

    expected = "c_" + hmac.new(b"k" * 32, b"case:dorset:55/1234/20", hashlib.sha256).hexdigest()[:16]
    assert pseudonymise(pd.Series(["55/1234/20"]), b"k" * 32, "case", "dorset")[0] == expected


def test_synthetic_data_uses_the_documented_test_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CARA_TEST_PSEUDO_KEY", "a-real-secret-key-of-enough-length")
    assert resolve_key(settings(tmp_path), synthetic=True) == b"public-test-key-not-secret"


def test_real_data_without_key_is_refused_with_instructions(tmp_path, monkeypatch):
    monkeypatch.delenv("CARA_TEST_PSEUDO_KEY", raising=False)
    with pytest.raises(PseudonymisationKeyError, match=r"synthetic: false.*CARA_TEST_PSEUDO_KEY.*absent\.key"):
        resolve_key(settings(tmp_path), synthetic=False)


def test_real_data_key_from_env_or_from_key_file_outside_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("CARA_TEST_PSEUDO_KEY", "a-real-secret-key-of-enough-length")
    assert resolve_key(settings(tmp_path), synthetic=False) == b"a-real-secret-key-of-enough-length"
    monkeypatch.delenv("CARA_TEST_PSEUDO_KEY")
    key_file = tmp_path / "pseudo.key"
    key_file.write_text("0123456789abcdef0123456789abcdef\n")
    assert resolve_key(settings(tmp_path, key_file), synthetic=False) == b"0123456789abcdef0123456789abcdef"
    key_file.write_text("short")
    with pytest.raises(PseudonymisationKeyError, match="shorter than 16 bytes"):
        resolve_key(settings(tmp_path, key_file), synthetic=False)


def test_key_file_inside_repository_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("CARA_TEST_PSEUDO_KEY", raising=False)
    with pytest.raises(PseudonymisationKeyError, match="inside the repository"):
        resolve_key(settings(tmp_path, REPO / "config" / "pseudo.key"), synthetic=False, repo_root=REPO)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("public-test-key-not-secret", "synthetic test key published"),
        (" public-test-key-not-secret\n", "synthetic test key published"),
        (" " * 16, "blank"),
        ("short-key", "shorter than 16 bytes"),
        ("x" * 40, "one character repeated"),
    ],
)
def test_real_data_refuses_the_test_key_blank_short_and_trivial_keys(tmp_path, monkeypatch, key, message):
    monkeypatch.setenv("CARA_TEST_PSEUDO_KEY", key)
    with pytest.raises(PseudonymisationKeyError, match=rf"CARA_TEST_PSEUDO_KEY.*synthetic: false.*{message}"):
        resolve_key(settings(tmp_path), synthetic=False)
    monkeypatch.delenv("CARA_TEST_PSEUDO_KEY")
    key_file = tmp_path / "pseudo.key"
    key_file.write_text(key)
    with pytest.raises(PseudonymisationKeyError, match=rf"key file .*pseudo\.key.*{message}"):
        resolve_key(settings(tmp_path, key_file), synthetic=False)
