"""The FC code package: cp310 manylinux wheels where binary, nothing the function never runs, and the FC
loader finds the handler."""

from __future__ import annotations

import subprocess
import sys
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    subprocess.run(["bash", str(ROOT / "deploy" / "build.sh"), str(out)], check=True, cwd=ROOT,
                   env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHON": sys.executable,
                        "HOME": str(out), **({"PYTHON310": sys.executable} if sys.version_info[:2] == (3, 10) else {})},
                   timeout=600)
    return out / "code"


def wheel_tags(package: Path) -> dict[str, tuple[bool, list[str]]]:
    found = {}
    for wheel in package.glob("*.dist-info/WHEEL"):
        meta = Parser().parsestr(wheel.read_text())
        found[wheel.parent.name] = (meta["Root-Is-Purelib"].strip().lower() == "true", meta.get_all("Tag") or [])
    return found


def test_binary_packages_are_cpython310_manylinux_x86_64(package: Path) -> None:
    tags = wheel_tags(package)
    assert {"oss2", "httpx", "pydantic", "pydantic_core", "crcmod_plus"} <= {n.split("-")[0] for n in tags}
    for name, (pure, wheel_tags_) in tags.items():
        for tag in wheel_tags_:
            python, abi, platform = tag.split("-")
            if pure:
                assert abi == "none" and platform == "any", (name, tag)
            else:
                assert python in ("cp310", "cp39", "cp38", "cp37") and abi in ("cp310", "abi3"), (name, tag)
                assert python == "cp310" or abi == "abi3", (name, tag)
                assert "manylinux" in platform and platform.endswith("x86_64"), (name, tag)
    binary_files = {line.split(",")[0] for name, (pure, _) in tags.items() if not pure
                    for line in (package / name / "RECORD").read_text().splitlines()}
    shared_objects = {str(so.relative_to(package)) for so in package.rglob("*.so")}
    assert shared_objects
    assert shared_objects <= binary_files  # every binary comes from a checked wheel


#: What the package must not hold: the dependencies' test suites and test helpers, and the sources and
#: headers their compiled extensions were built from.
NEVER_RUN_DIRECTORIES = {"tests", "test", "SelfTest"}
NEVER_RUN_SUFFIXES = {".pyx", ".pxd", ".pyi", ".c", ".h"}
NEVER_RUN_NAMES = {"_testbase.py", "conftest.py"}


def never_run(package: Path) -> list[str]:
    found = []
    for path in package.rglob("*"):
        relative = path.relative_to(package)
        if any(part.endswith(".dist-info") for part in relative.parts):
            continue
        if path.is_dir() and path.name in NEVER_RUN_DIRECTORIES:
            found.append(f"{relative}/")
        elif path.is_file() and (path.suffix in NEVER_RUN_SUFFIXES or path.name in NEVER_RUN_NAMES
                                 or path.name.startswith("test_")):
            found.append(str(relative))
    return sorted(found)


def test_package_holds_nothing_the_function_never_runs(package: Path) -> None:
    assert never_run(package) == []
    assert not (package.parent / "wheels").exists()  # the wheels are built in a temporary folder
    assert (package / "certifi" / "cacert.pem").is_file()  # data files the libraries read stay
    for dist_info in package.glob("*.dist-info"):
        assert (dist_info / "RECORD").is_file(), dist_info.name


def test_handler_code_is_the_repository_handler(package: Path) -> None:
    cli = ROOT / "handler" / "iproduction" / "cli"
    for source in (ROOT / "handler").rglob("*.py"):
        if cli not in source.parents:
            assert (package / source.relative_to(ROOT / "handler")).read_bytes() == source.read_bytes()


def test_the_operator_command_line_is_not_shipped(package: Path) -> None:
    """It needs dev-only packages (alibabacloud-credentials); the function never imports it."""
    assert (ROOT / "handler" / "iproduction" / "cli" / "main.py").exists()
    assert not (package / "iproduction" / "cli").exists()
    assert not list(package.glob("*.egg-info"))


@pytest.mark.skipif(sys.version_info[:2] != (3, 10), reason="the package holds CPython 3.10 binaries")
def test_the_fc_loader_finds_the_handler_in_the_package(package: Path) -> None:
    """Like the runtime: only the code root on sys.path (no site-packages), import index."""
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import index, oss2, httpx, pydantic, crcmod._crcfunext, aiohttp;"
        "import annotated_types, anyio, certifi, Crypto.Cipher.AES, aliyunsdkcore.client, cryptography.hazmat.backends;"
        "assert callable(index.handler) and callable(index.initialize) and callable(index.pre_stop);"
        "import aiohttp.http_parser as p; assert p.HttpResponseParser is p.HttpResponseParserC;"
        "from iproduction.runtime import new_loop; import uvloop; assert isinstance(new_loop(), uvloop.Loop);"
        "assert all(m.__file__.startswith(sys.argv[1])"
        " for m in (oss2, httpx, pydantic, uvloop, certifi, anyio, aiohttp));"
        "assert open(certifi.where()).read(64);"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-S", "-c", probe, str(package)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.skipif(sys.version_info[:2] != (3, 10), reason="bytecode is built by a CPython 3.10")
def test_package_ships_bytecode_that_needs_no_source_check(package: Path) -> None:
    """The FC code directory is read-only: without shipped bytecode every cold start compiles."""
    for module in ("index", "iproduction/app", "oss2/api", "pydantic/main", "httpx/_client"):
        source = package / f"{module}.py"
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-310.pyc"
        header = pyc.read_bytes()[:16]
        assert int.from_bytes(header[4:8], "little") == 0b01, module  # PEP 552: hash-based, unchecked
