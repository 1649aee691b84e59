"""Keyed pseudonyms for personal identifiers, applied on ingest so raw ids never reach results/.

HMAC-SHA256 with a secret key: the same key gives the same pseudonym in every run (so reruns and later
extracts link up), while without the key nobody can recompute a pseudonym from a known PNC id.
"""

import hmac
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cara_eval.common.paths import REPO_ROOT

PSEUDONYM_HEX_CHARS = 16
PREFIXES = {"case": "c_", "offender": "o_", "victim": "v_"}
MIN_KEY_BYTES = 16


class PseudonymisationKeyError(RuntimeError):
    """No usable key: real data is never pseudonymised with the public test key."""


def resolve_key(settings, synthetic, repo_root=REPO_ROOT):
    """The HMAC key. Synthetic forces: always the documented test key (so the generator's pseudonyms and
    ingest's agree on every machine). Real forces: the env var, else a key file outside the repository;
    refused when blank, shorter than MIN_KEY_BYTES, one character repeated, or the published test key.

    ``settings`` is the config's ``pseudonymisation`` section.
    """
    if synthetic:
        return settings["synthetic_test_key"].encode("utf-8")
    env_name = settings["key_env"]
    from_env = os.environ.get(env_name)
    key_file = Path(settings["key_file"]).expanduser().resolve()
    if from_env is not None and from_env != "":
        key, source = from_env.strip().encode("utf-8"), f"the environment variable {env_name}"
    elif key_file.is_relative_to(Path(repo_root).resolve()):
        raise PseudonymisationKeyError(
            f"Refusing key file {key_file}: it lies inside the repository {repo_root}, where it could be "
            "committed. Move it outside (e.g. ~/.config/cara-eval/pseudonymisation.key) and set "
            "pseudonymisation.key_file in config/config.yaml."
        )
    elif key_file.is_file():
        key, source = key_file.read_bytes().strip(), f"the key file {key_file}"
    else:
        raise PseudonymisationKeyError(
            "This force's mapping says synthetic: false (real data), and no pseudonymisation key was found. "
            f"Supply one with the environment variable {env_name} "
            f"(export {env_name}=...) or in the key file {key_file} (outside the repository, "
            f"readable only by you, e.g. created with: {KEY_RECIPE} > {key_file} && chmod 600 {key_file}). "
            "Keep the same key for every run so pseudonyms link up."
        )
    problem = _key_problem(key, settings["synthetic_test_key"])
    if problem:
        raise PseudonymisationKeyError(
            f"Refusing the pseudonymisation key from {source} for real data (synthetic: false): {problem}. "
            f"Make a secret key, e.g. {KEY_RECIPE}, and keep it for every run so pseudonyms link up."
        )
    return key


KEY_RECIPE = "python -c 'import secrets; print(secrets.token_hex(32))'"


def _key_problem(key, test_key):
    """Why a key must not pseudonymise real data (text), or None."""
    if not key:
        return "it is blank"
    if key == test_key.strip().encode("utf-8"):
        return ("it is the synthetic test key published in config/config.yaml, so anyone with the "
                "repository could recompute every pseudonym")
    if len(key) < MIN_KEY_BYTES:
        return f"it is shorter than {MIN_KEY_BYTES} bytes"
    if len(set(key)) == 1:
        return "it is one character repeated"
    return None


def pseudonymise(values, key, kind, force):
    """Pseudonyms for a Series of identifiers, e.g. ``o_3fa9c2...`` (object dtype); missing stays None.

    The force is part of the message because nominal ids and crime references are only unique within a
    force. Each distinct identifier is hashed once (extracts repeat offender ids).
    """
    codes, uniques = pd.factorize(values)
    prefix = PREFIXES[kind]
    salt = f"{kind}:{force}:"
    hashed = [
        prefix + hmac.digest(key, (salt + str(value).strip()).encode("utf-8"), "sha256").hex()[:PSEUDONYM_HEX_CHARS]
        for value in uniques.tolist()
    ]
    lookup = np.array(hashed + [None], dtype=object)
    return pd.Series(lookup[codes], index=values.index, name=values.name)
