"""The documentation stands alone: the README is a front page, and no link or file of the project points
outside the repository (a person who clones it has nothing else)."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if (ROOT / n).suffix in {".md", ".py", ".yaml", ".yml", ".sh", ".json", ".toml"}
            or n in {"Makefile", ".ci/run"}]


def test_the_readme_is_a_short_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    text = "\n".join(lines)
    assert "make lab-up" in text and "make test" in text


def test_every_relative_link_in_the_docs_leads_to_a_file_of_the_repository():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor on the same page
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT), f"{page.name}: {target} points outside the repository"
            assert path.exists(), f"{page.name}: {target} does not exist"


def test_no_file_points_at_the_steering_folder_outside_the_repository():
    for path in tracked_text_files():
        if path == Path(__file__):
            continue
        text = path.read_text(errors="replace")
        assert "../shared" not in text and "shared/reference" not in text, path
