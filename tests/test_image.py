"""What the Docker image would hold: no Docker engine runs on these machines, so the build is
followed by hand. The files the Dockerfile copies are staged alone, installed the way its
`pip install .` does, and the installed bot, run from elsewhere, must load its knowledge and
answer. A package or data file the Dockerfile forgets to copy, or that the package does not
install, fails here rather than in the image."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _copied() -> list[str]:
    """The sources of the Dockerfile's COPY lines, as paths in the repository."""
    sources: list[str] = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\s*COPY\s+(?!--)(.+)\s+\S+\s*$", line)
        if found:
            sources += found.group(1).split()
    return sources


def test_the_dockerfile_runs_the_bot_as_a_user_with_its_database_on_the_volume() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.\d+-slim\b", text, re.M)
    assert re.search(r"^USER (?!root\b)\S+", text, re.M)
    volume = re.search(r'^VOLUME \["(?P<dir>[^"]+)"\]', text, re.M)
    assert volume and f"MESOBOT_DB={volume['dir']}/" in text
    assert 'CMD ["python", "-m", "bot", "run"]' in text


def test_what_the_dockerfile_copies_installs_a_bot_that_answers(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for source in _copied():
        path = ROOT / source
        assert path.exists(), f"the Dockerfile copies {source}, which does not exist"
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, context / source)
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    # The build uses this environment's setuptools, so no index is reached; dependencies are
    # those of this environment too (the image gets them from pyproject.toml's pins).
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, context], check=True)
    (wheel,) = wheels.glob("mesobot-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", site, wheel], check=True)

    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1", "TELEGRAM_BOT_TOKEN": ""}
    run = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json", "how much is the pain course?"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    reply = json.loads(run.stdout)
    assert reply["kind"] == "answer" and reply["entry_id"] == "pain-course-price"
    assert "£600" in reply["answer"]
    installed = subprocess.run(
        [sys.executable, "-c", "import bot, handlers, knowledge; print(bot.__file__, knowledge.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(site) in installed.stdout and str(ROOT) not in installed.stdout
