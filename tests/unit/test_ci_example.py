"""The CI example of docs/ci.md is a workflow that runs: docs/examples/github-workflow.yml parses, runs
`nfwlab test` on an Ubuntu runner with its reports, and is the very text the page shows."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
WORKFLOW = ROOT / "docs" / "examples" / "github-workflow.yml"
PAGE = ROOT / "docs" / "ci.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def steps() -> list[dict]:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert len(jobs) == 1
    (job,) = jobs.values()
    assert job["runs-on"].startswith("ubuntu-")
    return job["steps"]


def test_the_workflow_runs_nfwlab_test_with_its_reports_as_root():
    runs = [s["run"] for s in steps() if "run" in s]
    (test,) = [r for r in runs if "nfwlab test " in r]
    assert test.startswith("sudo .venv/bin/nfwlab test cases/scenario.yaml")
    assert "--junit results.xml" in test and "--summary summary.md" in test
    assert "sudo make host" in runs and "sudo make images" in runs


def test_the_reports_are_kept_whatever_the_outcome():
    all_steps = steps()
    test_at = next(i for i, s in enumerate(all_steps) if "nfwlab test " in s.get("run", ""))
    after = all_steps[test_at + 1:]
    assert after and all(s.get("if") == "always()" for s in after)
    text = " ".join(str(s) for s in after)
    assert "$GITHUB_STEP_SUMMARY" in text and "actions/upload-artifact" in text and "junit-report" in text


def test_the_page_shows_the_workflow_file_as_it_is():
    blocks = YAML_BLOCK.findall(PAGE.read_text())
    assert WORKFLOW.read_text() in blocks


def test_the_gitlab_example_parses_and_reports_junit():
    blocks = [yaml.safe_load(b) for b in YAML_BLOCK.findall(PAGE.read_text())]
    (gitlab,) = [b["nfwlab-cases"] for b in blocks if "nfwlab-cases" in b]
    assert gitlab["artifacts"]["when"] == "always"
    assert gitlab["artifacts"]["reports"]["junit"] == "results.xml"
    assert any("nfwlab test " in line and "--junit results.xml" in line for line in gitlab["script"])
