"""A team's machines sharing one remote store (a shared folder, and a real S3 server on
loopback): what one paid for, no other pays for again."""

from __future__ import annotations

import json
import time
import tomllib

import pytest

from tests.conftest import ProjectDir, RunCli, Served
from tests.remote.conftest import Machine, S3Server, clone_checkout, process_env

SET = """
version = 1
[settings]
jobs = 4
[images.tile]
prompt = "team tile {{ n }}"
resolution = "1K"
matrix = { n = [0, 1, 2, 3, 4, 5] }
"""


def _locked(project: ProjectDir) -> dict[str, dict[str, object]]:
    images: dict[str, dict[str, object]] = tomllib.loads(
        (project.root / "assetbuild.lock").read_text())["images"]
    return images


def _outputs(project: ProjectDir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((project.root / "generated").iterdir())}


def test_a_second_machine_restores_every_output_with_the_result_urls_dead(
        machines: list[Machine], run_cli: RunCli, served: Served, remote_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = machines[0], machines[1]
    first.project.write_manifest(SET)
    monkeypatch.setenv("ASSETBUILD_REMOTE", remote_url)
    assert first.run(run_cli, monkeypatch, "build").code == 0
    for entry in _locked(first.project).values():
        served.emulator.expire(str(entry["task_id"]))  # the platform let the results go
    clone_checkout(first, second)
    pulled = second.run(run_cli, monkeypatch, "pull")
    assert pulled.code == 0, pulled.err
    assert "6 restored" in pulled.err
    assert _outputs(second.project) == _outputs(first.project)
    assert served.emulator.stats.submits == 6


def test_a_branch_that_never_saw_a_build_reuses_the_teams_results(
        machines: list[Machine], run_cli: RunCli, served: Served, remote_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, branch = machines[0], machines[1]
    first.project.write_manifest(SET)
    monkeypatch.setenv("ASSETBUILD_REMOTE", remote_url)
    assert first.run(run_cli, monkeypatch, "build").code == 0
    branch.project.write_manifest(SET)  # the same change, made again on another branch
    built = branch.run(run_cli, monkeypatch, "build")
    assert built.code == 0, built.err
    assert "6 cached from the remote" in built.err and "0 points spent" in built.err
    assert served.emulator.stats.submits == 6, "no submit: the team had paid for these"
    assert _outputs(branch.project) == _outputs(first.project)
    locked = _locked(branch.project)
    assert {e["task_id"] for e in locked.values()} == {
        e["task_id"] for e in _locked(first.project).values()}
    assert branch.run(run_cli, monkeypatch, "check").code == 0


@pytest.mark.slow
def test_two_machines_started_together_pay_once(
        machines: list[Machine], served: Served, remote_url: str) -> None:
    served.emulator.configure(latency=1.0)
    env = process_env(served.base_url, remote_url)
    for machine in machines[:2]:
        machine.project.write_manifest(SET)
    running = [machine.start(env) for machine in machines[:2]]
    said = [process.communicate(timeout=120)[1] for process in running]
    assert [process.returncode for process in running] == [0, 0], said
    assert served.emulator.stats.submits == 6, "each image paid for once by the team"
    assert _outputs(machines[0].project) == _outputs(machines[1].project)


@pytest.mark.slow
def test_a_killed_machines_tasks_are_finished_by_the_next_without_paying_again(
        machines: list[Machine], served: Served, remote_url: str) -> None:
    served.emulator.configure(latency=3.0)
    env = process_env(served.base_url, remote_url)
    killed, next_one = machines[0], machines[1]
    killed.project.write_manifest(SET)
    process = killed.start(env)
    deadline = time.monotonic() + 30
    while served.emulator.stats.submits < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the answers journaled and written into the leases
    process.kill()
    process.communicate(timeout=30)
    paid = served.emulator.stats.submits
    next_one.project.write_manifest(SET)
    finished = next_one.start(env)
    _, said = finished.communicate(timeout=120)
    assert finished.returncode == 0, said
    assert served.emulator.stats.submits == 6, (
        f"{paid} paid by the killed machine; the next paid only for the {6 - paid} it never sent")
    assert len(_locked(next_one.project)) == 6


def test_a_readonly_machine_writes_nothing_to_the_remote(
        machines: list[Machine], run_cli: RunCli, served: Served, remote_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    trusted, fork = machines[0], machines[1]
    trusted.project.write_manifest(SET)
    monkeypatch.setenv("ASSETBUILD_REMOTE", remote_url)
    assert trusted.run(run_cli, monkeypatch, "build").code == 0
    before = json.loads(run_cli("remote", "info", "-f", str(trusted.project.manifest),
                                "--json").out)
    fork.project.write_manifest(SET.replace("[0, 1, 2, 3, 4, 5]", "[0, 1, 2, 3, 4, 5, 6]"))
    built = fork.run(run_cli, monkeypatch, "build", "--remote-readonly")
    assert built.code == 0, built.err
    assert "1 built, 6 cached from the remote" in built.err, "it reads everything"
    after = json.loads(run_cli("remote", "info", "-f", str(fork.project.manifest),
                               "--json").out)
    assert after["objects"] == before["objects"] > 0, "and writes nothing"


def test_a_corrupted_blob_is_refused_and_the_image_comes_another_way(
        machines: list[Machine], run_cli: RunCli, served: Served, tmp_path: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    remote = Path(str(tmp_path)) / "shared"
    first, second = machines[0], machines[1]
    first.project.write_manifest(SET)
    monkeypatch.setenv("ASSETBUILD_REMOTE", f"file://{remote}")
    assert first.run(run_cli, monkeypatch, "build").code == 0
    for blob in (remote / "v1" / "blobs").rglob("*"):
        if blob.is_file():
            blob.write_bytes(b"\x89PNG planted bytes")
    second.project.write_manifest(SET)
    built = second.run(run_cli, monkeypatch, "build")
    assert built.code == 0, built.err
    assert "does not hold the bytes it is named for (corrupt or planted)" in built.err
    assert _outputs(second.project) != {} and all(
        data.startswith(b"\x89PNG\r\n") for data in _outputs(second.project).values())
    assert b"planted" not in b"".join(_outputs(second.project).values())


def test_a_remote_that_is_down_is_a_warning_and_the_build_goes_on(
        project: ProjectDir, run_cli: RunCli, served: Served,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-of-the-team")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    project.write_manifest(SET)
    built = run_cli("build", "-f", str(project.manifest), "--remote", "s3://team/down")
    assert built.code == 0, built.err
    assert "the remote s3://team/down is not used for the rest of this build" in built.err
    assert built.err.count("is not used for the rest") == 1, "said once"
    assert "secret-of-the-team" not in built.err
    assert served.emulator.stats.submits == 6


def test_a_slow_remote_costs_one_timeout_and_the_build_goes_on(
        project: ProjectDir, run_cli: RunCli, served: Served, slow_s3: S3Server,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in slow_s3.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ASSETBUILD_REMOTE_TIMEOUT", "1")
    project.write_manifest(SET)
    started = time.monotonic()
    built = run_cli("build", "-f", str(project.manifest), "--remote", "s3://team/slow")
    assert built.code == 0, built.err
    assert built.err.count("is not used for the rest of this build") == 1, built.err
    assert "6 built" in built.err and served.emulator.stats.submits == 6
    assert time.monotonic() - started < 30, "the slow store was given up on, not waited out"


def test_a_remote_timeout_that_is_not_seconds_is_a_usage_error(
        project: ProjectDir, run_cli: RunCli, served: Served,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSETBUILD_REMOTE_TIMEOUT", "soon")
    project.write_manifest(SET)
    built = run_cli("build", "-f", str(project.manifest), "--remote", "file:///tmp/x")
    assert built.code == 2
    assert "ASSETBUILD_REMOTE_TIMEOUT='soon' is not a number of seconds" in built.err
    assert "Traceback" not in built.err and served.emulator.stats.submits == 0


def test_check_says_which_stale_images_the_team_already_holds(
        machines: list[Machine], run_cli: RunCli, served: Served, remote_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, branch = machines[0], machines[1]
    first.project.write_manifest(SET)
    monkeypatch.setenv("ASSETBUILD_REMOTE", remote_url)
    assert first.run(run_cli, monkeypatch, "build").code == 0
    branch.project.write_manifest(SET.replace("[0, 1, 2, 3, 4, 5]", "[0, 1, 2, 3, 4, 5, 6]"))
    checked = branch.run(run_cli, monkeypatch, "check", "--remote")
    assert checked.code == 1, "stale in git all the same"
    assert "6 of the images to build the team has already paid for" in checked.out
    as_json = json.loads(branch.run(run_cli, monkeypatch, "check", "--remote", "--json").out)
    assert sorted(as_json["on_remote"]) == [f"tile[n={n}]" for n in range(6)]
    assert "on the remote" not in branch.run(run_cli, monkeypatch, "check").out
    assert served.emulator.stats.submits == 6


def test_a_planted_entry_for_a_spec_is_not_used(
        machines: list[Machine], run_cli: RunCli, served: Served, tmp_path: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    remote = Path(str(tmp_path)) / "shared"
    first, second = machines[0], machines[1]
    first.project.write_manifest(SET)
    monkeypatch.setenv("ASSETBUILD_REMOTE", f"file://{remote}")
    assert first.run(run_cli, monkeypatch, "build").code == 0
    for entry in (remote / "v1" / "entries").iterdir():
        entry.write_text('{"spec_hash": "x", "outputs": "not a list"}')
    second.project.write_manifest(SET)
    built = second.run(run_cli, monkeypatch, "build")
    assert built.code == 0, built.err
    assert "the remote's entry for this spec is not usable" in built.err
    assert "6 built" in built.err and served.emulator.stats.submits == 12


def test_remote_gc_keeps_what_the_lockfile_on_the_refs_references(
        machines: list[Machine], run_cli: RunCli, served: Served, remote_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    machine = machines[0]
    root = machine.project.root
    monkeypatch.setenv("ASSETBUILD_REMOTE", remote_url)
    machine.project.write_manifest(SET.replace("[0, 1, 2, 3, 4, 5]", "[0, 1]"))
    assert machine.run(run_cli, monkeypatch, "build").code == 0
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "assetbuild.toml", "assetbuild.lock"], check=True)
    subprocess.run([*git, "commit", "-qm", "two tiles"], check=True)
    machine.project.write_manifest(SET.replace("[0, 1, 2, 3, 4, 5]", "[7, 8]"))
    assert machine.run(run_cli, monkeypatch, "build").code == 0
    subprocess.run([*git, "checkout", "-q", "assetbuild.toml", "assetbuild.lock"], check=True)
    manifest = str(machine.project.manifest)
    info = json.loads(run_cli("remote", "info", "-f", manifest, "--json").out)
    assert info["reachable"] and info["kinds"]["entries"]["objects"] == 4
    dry = json.loads(run_cli("remote", "gc", "-f", manifest, "--keep-locked", "--dry-run",
                             "--json").out)
    assert dry["deleted"] == 4 and dry["dry_run"], "tiles 7 and 8: an entry and a blob each"
    done = json.loads(run_cli("remote", "gc", "-f", manifest, "--keep-locked", "--json").out)
    assert done["deleted"] == 4
    after = json.loads(run_cli("remote", "info", "-f", manifest, "--json").out)
    assert after["kinds"]["entries"]["objects"] == 2 and after["kinds"]["blobs"]["objects"] == 2
    pulled = machine.run(run_cli, monkeypatch, "build")
    assert pulled.code == 0 and served.emulator.stats.submits == 4, "what HEAD locks stays"


def test_a_remote_that_refuses_writes_is_a_warning_and_every_image_is_built(
        project: ProjectDir, run_cli: RunCli, served: Served, tmp_path: object) -> None:
    from pathlib import Path

    remote = Path(str(tmp_path)) / "refusing"
    (remote / "v1").mkdir(parents=True)
    (remote / "v1" / "blobs").write_text("a file where the store needs a folder")
    project.write_manifest(SET)
    built = run_cli("build", "-f", str(project.manifest), "--remote", f"file://{remote}")
    assert built.code == 0, built.err
    assert built.err.count("is not used for the rest of this build") == 1
    assert "6 built" in built.err and len(_locked(project)) == 6


def test_sharded_builds_share_the_remote(
        machines: list[Machine], run_cli: RunCli, served: Served, remote_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    shard, whole = machines[0], machines[1]
    monkeypatch.setenv("ASSETBUILD_REMOTE", remote_url)
    shard.project.write_manifest(SET)
    assert shard.run(run_cli, monkeypatch, "build", "--shard", "1/2").code == 0
    paid = served.emulator.stats.submits
    assert 0 < paid < 6
    whole.project.write_manifest(SET)
    built = whole.run(run_cli, monkeypatch, "build")
    assert built.code == 0, built.err
    assert f"{6 - paid} built, {paid} cached from the remote" in built.err
    assert served.emulator.stats.submits == 6


def test_a_branch_asking_for_the_same_takes_pays_for_none(
        machines: list[Machine], run_cli: RunCli, served: Served, remote_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, branch = machines[0], machines[1]
    takes = SET.replace('resolution = "1K"', 'resolution = "1K"\ntakes = 2').replace(
        "[0, 1, 2, 3, 4, 5]", "[0, 1]")
    first.project.write_manifest(takes)
    monkeypatch.setenv("ASSETBUILD_REMOTE", remote_url)
    assert first.run(run_cli, monkeypatch, "build").code == 0
    assert served.emulator.stats.submits == 4
    branch.project.write_manifest(takes)
    built = branch.run(run_cli, monkeypatch, "build")
    assert built.code == 0, built.err
    assert served.emulator.stats.submits == 4, "every take came from the remote"
    def take_ids(project: ProjectDir) -> list[list[str]]:
        return [[t["task_id"] for t in e["takes"]]  # type: ignore[attr-defined]
                for e in _locked(project).values()]

    assert take_ids(branch.project) == take_ids(first.project)
    picked = branch.run(run_cli, monkeypatch, "pick", "tile[n=0]", "2")
    assert picked.code == 0, picked.err
    assert branch.run(run_cli, monkeypatch, "check").code == 0
