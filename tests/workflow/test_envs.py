"""Per-rule conda environments (envs/*.yaml): conda-forge cannot be reached here, so they are never solved in CI.
These tests hold them to what can be checked offline: they parse, pin exactly what requirements.lock pins, and
carry every third-party module the rule scripts import, directly or through cara_eval."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
# conda-forge names that differ from the PyPI distribution they install.
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib"}
# Tools that are not Python distributions, so requirements.lock cannot pin them: each must still be bounded.
NON_PYTHON_TOOLS = {"python", "pip", "quarto"}
# Modules a rule script may import without its env providing them: Snakemake's script preamble puts them there.
PROVIDED_BY_SNAKEMAKE = {"snakemake"}
# Engines pandas / xarray import lazily: a source mentioning the trigger needs the distribution in its env.
LAZY_ENGINES = {"parquet": "pyarrow", "read_excel": "openpyxl", "netcdf": "h5netcdf"}


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def env_pins(path: Path) -> dict[str, str]:
    """Distribution -> pinned version, for the conda and the pip part of an env file (tools excluded)."""
    pins = {}
    for spec in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(spec, dict):
            for pip_spec in spec["pip"]:
                name, version = pip_spec.split("==")
                pins[canonicalize_name(name)] = version
            continue
        name, _, version = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(==|=)?\s*(\S*)", spec).group(1, 2, 3)
        if name not in NON_PYTHON_TOOLS:
            pins[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = version
    return pins


def top_level_imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in one Python file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def package_modules(path: Path) -> list[Path]:
    """The cara_eval source files an import of cara_eval.<...> in `path` reaches (relative imports included)."""
    reached = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            dotted = [node.module] if node.module else [alias.name for alias in node.names]
            reached += [base.joinpath(*name.split(".")) for name in dotted]
        elif isinstance(node, ast.ImportFrom) and node.module.split(".")[0] == "cara_eval":
            reached.append(REPO / "src" / Path(*node.module.split(".")))
            reached += [REPO / "src" / Path(*node.module.split(".")) / alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            reached += [REPO / "src" / Path(*a.name.split(".")) for a in node.names if a.name.startswith("cara_eval")]
    files = []
    for stem in reached:
        files += [f for f in (stem.with_suffix(".py"), stem / "__init__.py") if f.is_file()]
    return files


def import_closure(entry_points: list[Path]) -> list[Path]:
    """The given files plus every cara_eval module they reach, transitively (package __init__s included)."""
    seen, todo = set(), list(entry_points)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += package_modules(path)
        if REPO / "src" in path.parents:
            todo += [p / "__init__.py" for p in path.parents if (p / "__init__.py").is_file() and REPO / "src" in p.parents]
    return sorted(seen)


def third_party_distributions(files: list[Path]) -> set[str]:
    """Distributions (canonical names) that the imports and lazy IO engines of these files need."""
    module_to_dist = packages_distributions()
    dists = set()
    for path in files:
        for module in top_level_imports(path) - set(sys.stdlib_module_names) - PROVIDED_BY_SNAKEMAKE - {"cara_eval"}:
            if module not in module_to_dist:
                raise AssertionError(f"{path.relative_to(REPO)} imports {module}, which no installed distribution provides")
            dists.update(canonicalize_name(d) for d in module_to_dist[module])
        text = path.read_text()
        dists.update(dist for trigger, dist in LAZY_ENGINES.items() if trigger in text)
    return dists


def source_files() -> list[Path]:
    """Every Python file of the package and of the rule scripts (scripts/cara_eval is a link to the package)."""
    scripts = [p for p in (REPO / "scripts").glob("*.py")]
    return sorted((REPO / "src" / "cara_eval").rglob("*.py")) + sorted(scripts)


def rule_blocks() -> dict[str, tuple[Path, str]]:
    """Rule name -> (its .smk file, the text of its declaration), for every rule and checkpoint in rules/*.smk."""
    blocks = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", smk.read_text()):
            rule = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
            if rule:
                blocks[rule.group(1)] = (smk, block)
    return blocks


def rule_script_envs() -> list[tuple[str, Path, Path]]:
    """(rule, script, env file) for every rule that declares both `conda:` and `script:`."""
    found = []
    for rule, (smk, block) in rule_blocks().items():
        conda = re.search(r"^\s+conda:\s*\n?\s*\"([^\"]+)\"", block, re.M)
        script = re.search(r"^\s+script:\s*\n?\s*\"([^\"]+)\"", block, re.M)
        if conda and script:
            found.append((rule, (smk.parent / script.group(1)).resolve(), (smk.parent / conda.group(1)).resolve()))
    return found


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_file_is_conda_forge_only_and_exactly_pinned(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert env["channels"][0] == "conda-forge" and "defaults" not in env["channels"]
    conda_specs = [s for s in env["dependencies"] if isinstance(s, str)]
    tools = {re.match(r"[A-Za-z0-9_.-]+", s).group(0): s for s in conda_specs}
    assert "python" in tools, f"{env_file.name}: pin python"
    requires = SpecifierSet(re.search(r'requires-python\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1))
    assert re.sub(r"^python\s*=+\s*", "", tools["python"]).rstrip(".*") in requires
    unbounded = [s for name, s in tools.items() if name in NON_PYTHON_TOOLS - {"pip"} and not re.search(r"[=<>]", s)]
    assert not unbounded, f"{env_file.name}: bound the tools' versions: {unbounded}"
    unpinned = [s for name, s in tools.items() if name not in NON_PYTHON_TOOLS and "==" not in s]
    assert not unpinned, f"{env_file.name}: pin exactly (name==version): {unpinned}"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_equal_requirements_lock(env_file):
    lock = lock_pins()
    pins = env_pins(env_file)
    assert pins, f"{env_file.name} pins nothing"
    missing = sorted(set(pins) - set(lock))
    assert not missing, f"{env_file.name} pins packages requirements.lock does not have: {missing}"
    differing = {name: (version, lock[name]) for name, version in pins.items() if version != lock[name]}
    assert not differing, f"{env_file.name}: (env, lock) versions differ: {differing}"


def test_envs_together_cover_every_third_party_import():
    needed = third_party_distributions(source_files())
    provided = set().union(*(env_pins(p) for p in ENV_FILES))
    assert {"pandas", "numpy", "pymc"} <= needed, "the import scan found too little to be trusted"
    assert needed <= provided, f"imported but in no envs/*.yaml: {sorted(needed - provided)}"


def test_each_rule_env_covers_what_its_script_imports():
    rules = rule_script_envs()
    assert rules, "no rule in rules/*.smk declares both conda: and script:"
    gaps = {}
    for rule, script, env_file in rules:
        assert env_file.is_file(), f"rule {rule}: {env_file} missing"
        missing = third_party_distributions(import_closure([script])) - set(env_pins(env_file))
        if missing:
            gaps[rule] = (env_file.name, sorted(missing))
    assert not gaps, f"rule -> (env, distributions its script needs but the env lacks): {gaps}"


def test_import_scan_follows_cara_eval_and_ignores_stdlib(tmp_path, monkeypatch):
    """The checker itself: a script importing the package reaches the package's own third-party imports."""
    package = tmp_path / "src" / "cara_eval"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fit.py").write_text("import json\nimport arviz as az\nfrom . import helpers\n")
    (package / "helpers.py").write_text("from scipy.special import expit\ndf.to_parquet('x')\n")
    (package / "unused.py").write_text("import lightgbm\n")
    script = tmp_path / "scripts" / "model_fit.py"
    script.parent.mkdir()
    script.write_text("import os\nfrom cara_eval.fit import sample\nfrom snakemake.script import snakemake\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    files = import_closure([script])
    assert {p.name for p in files} == {"model_fit.py", "fit.py", "helpers.py", "__init__.py"}
    assert third_party_distributions(files) == {"arviz", "scipy", "pyarrow"}
