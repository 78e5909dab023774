"""InfluxDB over TLS: a real influxd 1.6 with https, a CA and a server certificate made here, and freqfeed's
`check-influxdb` (the same client the producer, sync and gateway use) against it: verified with the CA file,
refused with a wrong CA, unverified only when asked (with a warning); credentials never in any output."""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from freqfeed.localinflux import LocalInfluxDB

pytestmark = [pytest.mark.integration, pytest.mark.dialects("1.x")]

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

USER, PASSWORD = "feeder", "s3cret-Pw-never-logged"


def _name(text: str) -> Any:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_ca(directory: Path, name: str) -> tuple[Path, Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


def make_server_cert(directory: Path, ca_cert: Any, ca_key: Any) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("influxdb.test")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class TLSServer:
    influxd: LocalInfluxDB
    ca: Path
    wrong_ca: Path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    certs = tmp_path_factory.mktemp("certs")
    ca, ca_cert, ca_key = make_ca(certs, "freqfeed-test-ca")
    wrong_ca, _, _ = make_ca(certs, "some-other-ca")
    server = LocalInfluxDB(tmp_path_factory.mktemp("influxd-tls"), auth=True, tls=make_server_cert(certs, ca_cert,
                                                                                                    ca_key))
    server.start()
    try:
        # the first user of an influxd with auth may be created without credentials
        answer = requests.post(f"{server.url}/query", verify=str(ca), timeout=10,
                               data={"q": f"CREATE USER {USER} WITH PASSWORD '{PASSWORD}' WITH ALL PRIVILEGES"})
        assert answer.status_code == 200, answer.text
        answer = requests.post(f"{server.url}/query", verify=str(ca), auth=(USER, PASSWORD), timeout=10,
                               data={"q": 'CREATE DATABASE "tls" WITH DURATION 360d'})
        assert answer.status_code == 200, answer.text
        yield TLSServer(server, ca, wrong_ca)
    finally:
        server.cleanup()


def run(tmp_path: Path, influxdb: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "feeder.yml"
    path.write_text(yaml.safe_dump({"influxdb": {"database": "tls", "username": USER, "timeout": 5, **influxdb},
                                    "pairs": ["BTC/USDT:USDT"]}))
    env = {**os.environ, "FREQFEED_INFLUXDB_PASSWORD": PASSWORD}
    result = subprocess.run([sys.executable, "-m", "freqfeed", *args, "--config", str(path)], capture_output=True,
                            text=True, timeout=120, check=False, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    assert PASSWORD not in result.stdout + result.stderr, "no credential in any output"
    return result


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}


def test_verified_with_the_ca_file(tls_server: TLSServer, tmp_path: Path) -> None:
    result = run(tmp_path, {"url": tls_server.influxd.url, "ca_file": str(tls_server.ca)}, "check-influxdb",
                 "--write-probe")
    checks = lines(result)
    assert result.returncode == 0, result.stdout
    assert checks["tls"].split()[1] == "OK" and f"verified with the CA file {tls_server.ca}" in checks["tls"]
    assert checks["server"].split()[1] == "OK" and checks["write"].split()[1] == "OK"
    assert "https://" in checks["server"]


def test_a_wrong_ca_fails_with_a_clear_message(tls_server: TLSServer, tmp_path: Path) -> None:
    result = run(tmp_path, {"url": tls_server.influxd.url, "ca_file": str(tls_server.wrong_ca)}, "check-influxdb")
    checks = lines(result)
    assert result.returncode == 1
    assert checks["server"].split()[1] == "FAIL"
    assert "TLS failed (certificate verify failed" in checks["server"], checks["server"]
    assert "influxdb.ca_file" in checks["server"]
    # without a CA file the system's store is used: a private CA is not in it
    result = run(tmp_path, {"url": tls_server.influxd.url}, "check-influxdb")
    assert result.returncode == 1 and "system's CA store" in lines(result)["server"], result.stdout


def test_unverified_only_when_asked_and_with_a_warning(tls_server: TLSServer, tmp_path: Path) -> None:
    result = run(tmp_path, {"url": tls_server.influxd.url, "verify_tls": False}, "check-influxdb")
    checks = lines(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert checks["tls"].split()[1] == "SKIP" and "NOT verified" in checks["tls"]
    assert "InsecureRequestWarning" not in result.stderr, "one clear line, not one warning per request"


def test_a_url_with_user_info_is_a_configuration_error(tls_server: TLSServer, tmp_path: Path) -> None:
    url = tls_server.influxd.url.replace("https://", f"https://{USER}:{PASSWORD}@")
    for command in ("check-config", "check-influxdb"):
        result = run(tmp_path, {"url": url, "ca_file": str(tls_server.ca)}, command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        output = result.stdout + result.stderr
        assert "influxdb.url: must not carry credentials" in output
        assert "influxdb.username" in output and "FREQFEED_INFLUXDB_PASSWORD" in output
