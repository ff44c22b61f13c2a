"""What the README's Deploy section and template.yml's header say agrees with what the template reads, and the
files the Deploy section hands to the aliyun CLI and ossutil are well formed."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "template.yml").read_text()
README = (ROOT / "README.md").read_text()
ENV = re.compile(r"\$\{\s*env\(\s*['\"](\w+)['\"]")
VARS = re.compile(r"\$\{\s*vars\.(\w+)\s*\}")
CONFIG = re.compile(r"\$\{\s*config\(\s*['\"](\w+)['\"]\s*\)\s*\}")


def env_read(text: str) -> set[str]:
    return set(ENV.findall(text))


def header_listed(text: str) -> set[str]:
    """Names the template's leading comment lists, one per line: ``#   NAME   what it is``."""
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    return {m.group(1) for line in header if (m := re.match(r"#\s{2,}([A-Z][A-Z0-9_]+)\s", line))}


def readme_exported(text: str) -> set[str]:
    """Names set by ``export`` lines in the README's shell blocks."""
    names = set()
    for line in text.splitlines():
        if line.lstrip().startswith("export "):
            names |= set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", line))
    return names


def test_the_scanners_find_what_they_should() -> None:
    sample = "# head\n#   DEST_BUCKET  x\n#   MNS_DLQ  y\nedition: 3\nprefix: ${env('DEST_PREFIX', 'a/')}\n"
    assert env_read(sample) == {"DEST_PREFIX"}
    assert header_listed(sample) == {"DEST_BUCKET", "MNS_DLQ"}
    assert readme_exported("```bash\nexport A=1 B_C=2\n  export D=x\nE=3\n```") == {"A", "B_C", "D"}


def test_the_template_header_lists_exactly_the_variables_the_template_reads() -> None:
    read = env_read(TEMPLATE)
    assert {"DEST_BUCKET", "DEST_PREFIX", "MNS_DLQ"} <= read
    assert header_listed(TEMPLATE) == read


def test_the_readme_exports_every_variable_the_template_reads() -> None:
    missing = env_read(TEMPLATE) - readme_exported(README)
    assert not missing, f"README's Deploy exports lack {sorted(missing)}"


def test_every_template_var_is_defined_and_config_keys_are_explained() -> None:
    defined = set(yaml.safe_load(TEMPLATE)["vars"])
    assert set(VARS.findall(TEMPLATE)) <= defined
    for key in set(CONFIG.findall(TEMPLATE)):
        assert key in README, f"README never says where config('{key}') comes from"
    assert "s config add" in README


def test_trust_policy_lets_function_compute_assume_the_role() -> None:
    policy = json.loads((ROOT / "deploy" / "trust-policy.json").read_text())
    [statement] = policy["Statement"]
    assert statement == {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": ["fc.aliyuncs.com"]}}


def test_lifecycle_rule_aborts_incomplete_uploads_under_the_default_prefix() -> None:
    rules = ET.parse(ROOT / "deploy" / "oss-lifecycle.xml").getroot().findall("Rule")
    [rule] = rules
    assert rule.findtext("Status") == "Enabled"
    assert rule.findtext("Prefix") == re.search(r"env\('DEST_PREFIX',\s*'([^']*)'\)", TEMPLATE).group(1)
    abort = rule.find("AbortMultipartUpload")
    assert abort is not None and [child.tag for child in abort] == ["Days"]  # Days or CreatedBeforeDate, not both
    assert int(abort.findtext("Days")) >= 1
    assert rule.find("Expiration") is None  # never expires the delivered results


def test_deploy_files_the_readme_names_exist() -> None:
    for name in re.findall(r"deploy/[\w.-]+\.(?:json|xml|sh)", README):
        assert (ROOT / name).is_file(), name
