"""What can be checked of the Containerfile without a container engine."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.unit.ops.cli_commands import orbit_subcommands

ROOT = Path(__file__).resolve().parents[3]
CONTAINERFILE = ROOT / "Containerfile"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|uv|pip install|apt-get install)\b")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [value for kw, value in self.instructions if kw == keyword]


def parse(text: str) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = value.split()
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name=name, base=parts[0]))
        elif stages:
            stages[-1].instructions.append((keyword, value.strip()))
    return stages


STAGES = parse(CONTAINERFILE.read_text())
FINAL = STAGES[-1]


def _exec_form(value: str) -> list[str]:
    parsed: list[str] = json.loads(value)
    return parsed


def test_it_is_multi_stage_and_the_final_stage_copies_only_the_virtualenv() -> None:
    assert len(STAGES) >= 2
    copies = FINAL.args("COPY")
    assert copies, "the runtime stage copies the built virtualenv"
    for copy in copies:
        assert copy.startswith("--from="), f"runtime stage copies from the context: {copy}"
    for run in FINAL.args("RUN"):
        assert not BUILD_TOOLS.search(run), f"build tooling in the runtime stage: {run}"


def test_dependencies_come_from_the_committed_lock_file_without_dev_tools() -> None:
    build_runs = [run for stage in STAGES[:-1] for run in stage.args("RUN")]
    syncs = [run for run in build_runs if "uv sync" in run]
    assert syncs
    for sync in syncs:
        assert "--frozen" in sync, sync
        assert "--no-dev" in sync, sync
    copied = " ".join(copy for stage in STAGES for copy in stage.args("COPY"))
    assert "uv.lock" in copied
    assert (ROOT / "uv.lock").is_file()


def test_the_final_user_is_not_root() -> None:
    users = FINAL.args("USER")
    assert users, "the runtime stage sets a USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "numeric, so Kubernetes' runAsNonRoot can check it"


def test_entrypoint_and_default_command_are_real_orbit_subcommands() -> None:
    (entrypoint,) = FINAL.args("ENTRYPOINT")
    (command,) = FINAL.args("CMD")
    assert _exec_form(entrypoint) == ["orbit"]
    default = _exec_form(command)
    assert default[0] in orbit_subcommands()
    # Every `orbit …` the file runs anywhere must exist too.
    for stage in STAGES:
        for run in stage.args("RUN"):
            for sub in re.findall(r"(?:^|&&|;|\|)\s*orbit\s+([a-z][a-z-]*)", run):
                assert sub in orbit_subcommands(), run


def test_the_runtime_writes_only_to_volumes() -> None:
    env = " ".join(FINAL.args("ENV"))
    home = re.search(r"ORBIT_HOME=(\S+)", env)
    tmp = re.search(r"TMPDIR=(\S+)", env)
    assert home
    assert tmp
    volumes = _exec_form(FINAL.args("VOLUME")[-1])
    assert home.group(1) in volumes
    assert tmp.group(1) in volumes
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    build_env = " ".join(env for stage in STAGES[:-1] for env in stage.args("ENV"))
    assert "UV_COMPILE_BYTECODE=1" in build_env  # no .pyc written at run time


def test_everything_the_build_copies_exists_and_is_in_the_build_context() -> None:
    ignore = (ROOT / ".containerignore").read_text().splitlines()
    for stage in STAGES:
        for copy in stage.args("COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _destination = copy.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert f"!{source}" in ignore, f"{source} is excluded from the build context"
