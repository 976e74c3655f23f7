"""The API key never appears in output, logs, the lockfile, the journal or any cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ProjectDir, RunCli, Served

CANARY = "sk-canary-d41d8cd98f00b204e9800998ecf8427e"


def files_below(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_the_key_is_nowhere(simple_project: ProjectDir, run_cli: RunCli, served: Served,
                            isolated_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEE2AI_API_KEY", CANARY)
    simple_project.write("assets/ref.png", "reference")
    text = simple_project.manifest.read_text().replace(
        'references = ["https://example.com/ref.jpg", "image:logo"]',
        'references = ["https://example.com/ref.jpg", "image:logo", "assets/ref.png"]')
    simple_project.manifest.write_text(text)
    manifest = str(simple_project.manifest)
    served.emulator.configure(rate_429=0.2, rate_500=0.2, retry_after=0.05, drop_rate=0.1)
    outputs = [run_cli("build", "-f", manifest, "-v"), run_cli("build", "-f", manifest, "--json")]
    (simple_project.root / "generated/hero.png").unlink()
    outputs += [run_cli("pull", "-f", manifest, "-v"), run_cli("plan", "-f", manifest, "--json"),
                run_cli("render", "-f", manifest, "hero"), run_cli("cache", "info", "--json")]
    served.emulator.configure(api_key="sk-something-else")
    simple_project.manifest.write_text(text.replace("Logo for", "New logo for"))
    outputs.append(run_cli("build", "-f", manifest, "-v"))
    assert outputs[-1].code == 3, "the failing path was exercised too"
    assert served.emulator.stats.uploads >= 1
    for result in outputs:
        assert CANARY not in result.out and CANARY not in result.err
    written = files_below(simple_project.root, isolated_environment)
    assert any(".assetbuild" in str(p) for p in written), "journal and state were written"
    for path in written:
        assert CANARY.encode() not in path.read_bytes(), path
