""".github and the contributor files: the workflow is valid (GitHub's JSON schemas, vendored
by check-jsonschema, so no network) and runs what .ci/run runs; the issue forms ask for
what a bug report needs; pre-commit runs ruff."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / ".github"
WORKFLOW = GITHUB / "workflows" / "ci.yml"


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- test-command -->\s*```bash\n(.*?)\n```\s*<!-- /test-command -->",
                      text, re.S)
    assert block, "README.md lost its test-command block"
    return block.group(1).strip()


def _workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _runs(job: dict) -> list[str]:
    return [" ".join(step["run"].split()) for step in job["steps"] if "run" in step]


@pytest.mark.parametrize(("schema", "files"), [
    ("vendor.github-workflows", sorted((GITHUB / "workflows").glob("*.yml"))),
    ("vendor.github-issue-forms", sorted((GITHUB / "ISSUE_TEMPLATE").glob("*_*.yml"))),
    ("vendor.github-issue-config", [GITHUB / "ISSUE_TEMPLATE" / "config.yml"]),
])
def test_github_files_match_githubs_schemas(schema: str, files: list[Path]) -> None:
    if shutil.which("check-jsonschema") is None:
        pytest.skip("check-jsonschema is not installed (it is in the test extras)")
    assert files
    proc = subprocess.run(["check-jsonschema", "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_runs_on_push_and_pull_request_on_three_pythons() -> None:
    workflow = _workflow()
    assert set(workflow["on"]) == {"push", "pull_request"}
    test = workflow["jobs"]["test"]
    assert test["strategy"]["matrix"]["python-version"] == ["3.10", "3.11", "3.12"]
    for job in workflow["jobs"].values():
        setup = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python")]
        assert setup and setup[0]["with"]["cache"] == "pip"


def test_workflow_test_job_runs_what_ci_run_runs() -> None:
    """Every part of the README's test command is a step, after the CPU torch and in
    order; the docs build as in .ci/run."""
    runs = _runs(_workflow()["jobs"]["test"])
    parts = [" ".join(p.split()) for p in _readme_test_command().split("&&")]
    positions = []
    for part in parts:
        where = [i for i, run in enumerate(runs) if part in run]
        assert where, f"README test command part {part!r} is not a workflow step"
        positions.append(where[0])
    assert positions == sorted(positions)
    torch_step = next(i for i, run in enumerate(runs) if "pip install \"torch==" in run)
    assert torch_step < positions[0]
    assert "torch==" in (ROOT / ".ci" / "run").read_text()
    assert any("mkdocs build --strict" in run for run in runs)
    assert "mkdocs build --strict" in (ROOT / ".ci" / "run").read_text()
    workflow_env = _workflow()["env"]
    assert "download.pytorch.org/whl/cpu" in workflow_env["PIP_EXTRA_INDEX_URL"]


def test_wheel_job_runs_the_install_test() -> None:
    runs = _runs(_workflow()["jobs"]["wheel"])
    assert any("pytest" in run and "tests/test_wheel.py" in run for run in runs)


def test_bug_report_asks_for_versions_config_and_error() -> None:
    form = yaml.safe_load((GITHUB / "ISSUE_TEMPLATE" / "bug_report.yml").read_text())
    ids = {item.get("id") for item in form["body"]}
    assert {"versions", "reproduce", "error"} <= ids
    required = {item["id"] for item in form["body"]
                if item.get("validations", {}).get("required")}
    assert {"versions", "reproduce"} <= required
    assert (GITHUB / "ISSUE_TEMPLATE" / "feature_request.yml").is_file()


def test_pull_request_template_has_the_projects_checklist() -> None:
    text = (GITHUB / "pull_request_template.md").read_text().lower()
    for item in ("tests", "docs", "changelog", "ruff", "mypy"):
        assert re.search(rf"^- \[ \] .*{item}", text, re.M), item  # on a checkbox line


def test_pre_commit_runs_ruff_and_formatting_hooks() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "end-of-file-fixer", "trailing-whitespace", "check-yaml"} <= hooks


def test_contributing_covers_setup_tests_benchmarks_and_new_regularizers() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    assert _readme_test_command() in text
    for needle in ("benchmarks/speed.py", "lightning_rnn_reg/regularizers/",
                   "lightning_rnn_reg/functional.py", "tests/regularizers/", "docs/",
                   "README", "CHANGELOG.md", "pre-commit install"):
        assert needle in text, needle


def test_version_has_one_source() -> None:
    import importlib.metadata

    import lightning_rnn_reg

    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "lightning_rnn_reg.__version__" }' in pyproject
    assert importlib.metadata.version("lightning-rnn-reg") == lightning_rnn_reg.__version__
    assert f"## [{lightning_rnn_reg.__version__}]" in (ROOT / "CHANGELOG.md").read_text()
