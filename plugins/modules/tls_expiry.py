#!/usr/bin/python
# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tls_expiry
short_description: Check the TLS certificates of many endpoints and files in one task
version_added: 1.0.0
author: trm.maintenance contributors (@trm-platform)
description:
  - Connects to every endpoint of O(endpoints) at the same time, reads the
    certificate and the chain it serves, and reads every certificate file of
    O(files). Reports the soonest expiries first.
  - For each endpoint or file, one finding judges the certificate's expiry
    against O(warning_days) and O(critical_days), optionally lowered for
    short-lived certificates by O(warning_lifetime_pct) and
    O(critical_lifetime_pct). An expired certificate, or one not valid yet, is
    critical.
  - Then one finding for each other problem found. An intermediate or root
    certificate of the chain that expires soon is judged like the leaf and
    reported apart from it, since renewing the leaf does not fix it. Critical
    are a certificate that is not valid for the host name, a chain that does
    not verify against the system trust store or O(ca_path) (self-signed, no
    intermediate sent, unknown CA), a key weaker than RSA 2048 or EC 224 bits, a
    SHA-1 or MD5 signature, a protocol version older than TLS 1.2, and a served
    certificate that differs from the one deployed in a file or a Kubernetes
    secret (renewed but never reloaded).
  - An endpoint that cannot be reached (refused, unknown host, no answer within
    its timeout) is V(unknown). One that answers without giving a certificate
    (plain text, a failed handshake or STARTTLS) is V(critical).
  - Each endpoint has its own timeout for its whole exchange; an endpoint that
    hangs never holds up the others beyond it.
  - Requires the C(cryptography) Python library where the module runs.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - trm.maintenance.check
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  endpoints:
    description:
      - The TLS endpoints to check, each a C(host:port) string (C([address]:port)
        for IPv6; the port defaults to 443) or a mapping.
      - A mapping needs C(host) and may set C(port) (default 443); C(name),
        shown in results (default C(host:port)); C(server_name), the name sent
        for SNI and checked against the certificate (default the host, unless
        the host is an IP address, which is then checked against the
        certificate's IP addresses); C(starttls), V(smtp) or V(postgres) for a
        service that upgrades a plain connection; C(timeout) and C(ca_path),
        overriding the options of the same name.
      - To compare the served certificate with the deployed one, a mapping may
        set C(expected_file), the path of the PEM file the service should
        serve, or C(expected_pem), the certificate as PEM text or as the
        base64 text of a Kubernetes secret's C(tls.crt).
      - Names must be unique across O(endpoints) and O(files).
    type: list
    elements: raw
    default: []
  files:
    description:
      - Certificate files to check, each a path or a mapping with C(path) and
        optionally C(name) and C(server_name) (a host name the certificate must
        be valid for).
      - A file holds PEM certificates, the certificate first and then its
        issuers, or one DER certificate. Every certificate of a bundle has its
        expiry judged, and the order of the bundle is checked.
      - A path with V(*), V(?) or V([) is a pattern; each matching file is
        checked.
      - The files are read where the module runs.
    type: list
    elements: raw
    default: []
  warning_days:
    description:
      - A certificate with fewer days left than this is a warning.
    type: int
    default: 30
  critical_days:
    description:
      - A certificate with fewer days left than this is critical. At most
        O(warning_days).
    type: int
    default: 7
  warning_lifetime_pct:
    description:
      - For short-lived certificates, a warning when less than this share of
        the certificate's lifetime (percent) is left, where that is fewer days
        than O(warning_days). For a 6-day certificate, V(33) warns 2 days before
        it expires instead of all its life.
      - Not set, only O(warning_days) counts.
    type: float
  critical_lifetime_pct:
    description:
      - Critical when less than this share of the certificate's lifetime
        (percent) is left, where that is fewer days than O(critical_days).
    type: float
  ca_path:
    description:
      - A PEM file or a folder (hashed, as C(c_rehash) makes it) of CA
        certificates to verify the chains against, instead of the system trust
        store.
    type: path
  timeout:
    description:
      - Seconds each endpoint has for its whole exchange (connection, STARTTLS,
        handshakes) before it counts as not answering.
    type: float
    default: 10.0
  max_workers:
    description:
      - How many endpoints are checked at the same time.
    type: int
    default: 32
notes:
  - O(timeout) bounds each endpoint's whole exchange. A host name lookup, which
    no socket timeout bounds, is given up on a second after the timeout; the
    endpoint is then reported as not answering.
  - The chain is verified with the dates left out, since every certificate's
    dates are judged on their own; an expired leaf is reported as expired, not
    as a chain that does not verify. When the chain does not verify, the
    certificate is read in a second handshake without verification.
  - The handshake accepts every protocol version and key size the local OpenSSL
    still has, so that old servers are reported rather than unreadable.
  - The host name check follows current TLS clients; only subject alternative
    names count, and a wildcard stands for one whole left-most label.
  - The chain as served is read with C(SSLSocket.get_unverified_chain) on
    Python 3.13 and later, and through the same OpenSSL call that the ssl
    module keeps private on Python 3.10 to 3.12. On older Pythons it is not
    available. Whenever the served chain cannot be read, the result says so
    (RV(certificates[].chain_available) is false and
    RV(certificates[].chain_note) says why), a warning names the endpoints,
    and only the leaf is judged; no intermediate is guessed at.
  - For files, the chain is not verified against a trust store; only the order
    of a bundle is checked, each certificate signed by the next.
  - Rank and first expiry cover the leaf and the certificates above it that
    clients rely on (the verified path, or the chain as served when it does not
    verify).
seealso:
  - module: community.crypto.get_certificate
  - module: trm.maintenance.http_health
"""

EXAMPLES = r"""
- name: Check the certificates of every public endpoint in one task
  trm.maintenance.tls_expiry:
    endpoints:
      - api.trm.example.org:443
      - www.trm.example.org
      - name: kubernetes-api
        host: 203.0.113.10
        port: 6443
        server_name: kubernetes.default.svc
        ca_path: /etc/trm/kubernetes-ca.pem
      - name: mail
        host: smtp.trm.example.org
        port: 587
        starttls: smtp
      - name: postgres
        host: db.trm.example.org
        port: 5432
        starttls: postgres
  delegate_to: localhost
  run_once: true
  register: certificates

- name: Show the ranked table, soonest expiry first
  ansible.builtin.debug:
    msg: >-
      {{ item.rank }}. {{ item.name }}: {{ item.days_remaining }} days
      ({{ item.status }})
  loop: "{{ certificates.certificates | selectattr('rank') }}"
  loop_control:
    label: "{{ item.name }}"

- name: Read the ingress certificate from its Kubernetes secret
  kubernetes.core.k8s_info:
    kind: Secret
    namespace: trm
    name: api-tls
  register: api_secret
  delegate_to: localhost
  run_once: true

- name: Fail when the ingress does not serve the certificate in its secret
  trm.maintenance.tls_expiry:
    endpoints:
      - name: api
        host: api.trm.example.org
        expected_pem: "{{ api_secret.resources[0].data['tls.crt'] }}"
    fail_on: critical
  delegate_to: localhost
  run_once: true

- name: Check certificate files on the hosts, short-lived ones by lifetime share
  trm.maintenance.tls_expiry:
    files:
      - /etc/ssl/trm/*.pem
      - path: /etc/redis/tls/redis.crt
        server_name: redis.trm.internal
    warning_lifetime_pct: 33
    critical_lifetime_pct: 10
"""

RETURN = r"""
status:
  description: The worst status of the findings.
  returned: always
  type: str
  sample: critical
summary:
  description: One line for a person, with the worst findings.
  returned: always
  type: str
  sample: >-
    TLS certificates CRITICAL (1 critical, 1 warning, 3 ok): mail: the
    certificate expires in 5 days, on 2024-05-11 09:00 UTC, below the critical
    threshold of 7 days
checks:
  description:
    - The findings, ranked by the first expiry of their endpoint or file,
      soonest first; entries whose certificate could not be read come last.
    - For each endpoint or file, its expiry finding, then one finding for each
      other problem.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description:
        - The endpoint's or file's name for the expiry finding; the name and
          the aspect (for example C(api hostname)) for the others.
      type: str
      sample: api.trm.example.org:443
    status:
      description: V(ok), V(warning), V(critical) or V(unknown).
      type: str
      sample: warning
    message:
      description: What was found, in one sentence that starts with the name.
      type: str
      sample: >-
        api.trm.example.org:443: the certificate expires in 20 days, on
        2024-05-26 09:00 UTC, below the warning threshold of 30 days
    value:
      description: For expiry findings, the whole days left (negative once expired).
      type: int
      sample: 20
    unit:
      description: The unit of RV(checks[].value), V(days).
      type: str
      sample: days
    warning:
      description: The warning bound in days for this certificate.
      type: float
      sample: 30.0
    critical:
      description: The critical bound in days for this certificate.
      type: float
      sample: 7.0
    threshold:
      description: The bounds in words.
      type: str
      sample: warning below 30 days, critical below 7 days
    action:
      description: What to do next; null when the finding is ok.
      type: str
      sample: >-
        Renew the certificate of api.trm.example.org:443 and reload the service
        that serves it
    target:
      description: The endpoint's or file's name.
      type: str
      sample: api.trm.example.org:443
    aspect:
      description:
        - What the finding is about. One of V(expiry), V(intermediate),
          V(root), V(hostname), V(chain), V(key), V(signature), V(protocol),
          V(reload) and V(bundle).
      type: str
      sample: expiry
    rank:
      description: The position of the entry in the ranking; null when unread.
      type: int
      sample: 1
    days_remaining:
      description: For expiry findings, the whole days left.
      type: int
      sample: 20
    not_after:
      description: For expiry findings, when the certificate expires.
      type: str
      sample: "2024-05-26T09:00:00+00:00"
    error:
      description:
        - Why no certificate was read, for an entry that could not be read.
        - One of V(timeout), V(connection_refused), V(dns), V(connection),
          V(not_tls), V(starttls), V(handshake), V(certificate), V(file) and
          V(internal).
      type: str
      sample: timeout
certificates:
  description: One record per endpoint or file, in the ranking's order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The endpoint's or file's name.
      type: str
      sample: api.trm.example.org:443
    kind:
      description: V(endpoint) or V(file).
      type: str
      sample: endpoint
    rank:
      description: The position in the ranking; null when no certificate was read.
      type: int
      sample: 1
    status:
      description: The worst status of the entry's findings.
      type: str
      sample: warning
    message:
      description: The message of the entry's expiry finding.
      type: str
      sample: >-
        api.trm.example.org:443: the certificate expires in 20 days, on
        2024-05-26 09:00 UTC, below the warning threshold of 30 days
    error:
      description: Why no certificate was read; null when one was.
      type: str
      sample: null
    host:
      description: The endpoint's host.
      type: str
      sample: api.trm.example.org
    port:
      description: The endpoint's port.
      type: int
      sample: 443
    server_name:
      description: The name sent for SNI.
      type: str
      sample: api.trm.example.org
    hostname:
      description: The name the certificate was checked against.
      type: str
      sample: api.trm.example.org
    hostname_matches:
      description: Whether the certificate is valid for RV(certificates[].hostname).
      type: bool
      sample: true
    starttls:
      description: The STARTTLS protocol used, if any.
      type: str
      sample: null
    path:
      description: The file's path, for files.
      type: str
      sample: null
    days_remaining:
      description: Whole days until the leaf certificate expires.
      type: int
      sample: 20
    not_after:
      description: When the leaf certificate expires.
      type: str
      sample: "2024-05-26T09:00:00+00:00"
    first_expiry:
      description: When the first certificate the entry relies on expires.
      type: str
      sample: "2024-05-26T09:00:00+00:00"
    days_to_first_expiry:
      description: Whole days until RV(certificates[].first_expiry).
      type: int
      sample: 20
    certificate:
      description: The leaf certificate.
      type: dict
      contains:
        subject:
          description: The subject, as an RFC 4514 string.
          type: str
          sample: CN=api.trm.example.org
        issuer:
          description: The issuer, as an RFC 4514 string.
          type: str
          sample: CN=R11,O=Let's Encrypt,C=US
        common_name:
          description: The subject's common name.
          type: str
          sample: api.trm.example.org
        subject_alt_names:
          description: The names the certificate is valid for.
          type: list
          elements: str
          sample: ["DNS:api.trm.example.org", "IP:203.0.113.10"]
        serial:
          description: The serial number in hexadecimal.
          type: str
          sample: "04:A1:9F"
        fingerprint_sha256:
          description: The SHA-256 fingerprint.
          type: str
          sample: "5E:1A:..."
        not_before:
          description: When the certificate becomes valid.
          type: str
          sample: "2024-02-26T09:00:00+00:00"
        not_after:
          description: When the certificate expires.
          type: str
          sample: "2024-05-26T09:00:00+00:00"
        days_remaining:
          description: Whole days left, rounded down.
          type: int
          sample: 20
        key_type:
          description: V(RSA), V(EC), V(Ed25519), V(Ed448) or V(DSA).
          type: str
          sample: EC
        key_size:
          description: The key size in bits.
          type: int
          sample: 256
        key_curve:
          description: The curve of an EC key.
          type: str
          sample: secp256r1
        signature_algorithm:
          description: The signature algorithm, in OpenSSL's words.
          type: str
          sample: sha256WithRSAEncryption
        signature_hash:
          description: The hash of the signature.
          type: str
          sample: sha256
        self_signed:
          description: Whether subject and issuer are the same.
          type: bool
          sample: false
        is_ca:
          description: Whether the certificate is a CA.
          type: bool
          sample: false
    chain:
      description:
        - The certificates served after the leaf, in the order served, with the
          same keys as RV(certificates[].certificate). For files, the rest of
          the bundle.
      type: list
      elements: dict
    chain_available:
      description:
        - Whether the chain as served could be read. When false, only the leaf
          was judged, and RV(certificates[].chain) is empty.
      type: bool
      sample: true
    chain_note:
      description: Why the served chain is not available; null when it is.
      type: str
      sample: null
    trust_anchor:
      description:
        - The root from the trust store that ended the verified chain, when the
          server did not send it; same keys as RV(certificates[].certificate).
      type: dict
    trust:
      description: What the chain was verified against, V(system) or the O(ca_path).
      type: str
      sample: system
    chain_verified:
      description: Whether the chain verified (dates left out).
      type: bool
      sample: true
    verify_error:
      description: OpenSSL's reason when the chain did not verify.
      type: str
      sample: unable to get local issuer certificate
    protocol:
      description: The negotiated protocol version.
      type: str
      sample: TLSv1.3
    cipher:
      description: The negotiated cipher suite.
      type: str
      sample: TLS_AES_256_GCM_SHA384
    handshake_seconds:
      description: Seconds from the connection to the end of the handshake.
      type: float
      sample: 0.012
    expected:
      description:
        - The comparison with C(expected_file) or C(expected_pem), when one is
          given; C(source), C(matches), C(fingerprint_sha256), C(not_after).
      type: dict
metrics:
  description:
    - Counts for reports and trends. C(targets_total), C(targets_ok) and
      C(targets_unread) (no certificate read) count endpoints and files;
      C(certificates_expiring) (warning or critical, not yet expired) and
      C(certificates_expired) count judged certificates, intermediates
      included; C(min_days_remaining) is the fewest days to a first expiry.
  returned: always
  type: dict
  sample:
    targets_total: 5
    targets_ok: 3
    targets_unread: 0
    certificates_expiring: 2
    certificates_expired: 0
    min_days_remaining: 5
"""

# Ansible's layout puts the documentation before the imports.
from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.trm.maintenance.plugins.module_utils.runner import (
    FAIL_ON_SPEC,
    run_check,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_certs import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_expiry import (
    run_tls_expiry,
)
from ansible_collections.trm.maintenance.plugins.module_utils.tls_options import (
    DEFAULT_CRITICAL_DAYS,
    DEFAULT_MAX_WORKERS,
    DEFAULT_TIMEOUT,
    DEFAULT_WARNING_DAYS,
)

ARGUMENT_SPEC = {
    "endpoints": {"type": "list", "elements": "raw", "default": []},
    "files": {"type": "list", "elements": "raw", "default": []},
    "warning_days": {"type": "int", "default": DEFAULT_WARNING_DAYS},
    "critical_days": {"type": "int", "default": DEFAULT_CRITICAL_DAYS},
    "warning_lifetime_pct": {"type": "float"},
    "critical_lifetime_pct": {"type": "float"},
    "ca_path": {"type": "path"},
    "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
    "max_workers": {"type": "int", "default": DEFAULT_MAX_WORKERS},
    **FAIL_ON_SPEC,
}


def main() -> None:
    """Check the certificates and exit with the check result."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(
            msg=missing_required_lib("cryptography"),
            exception=CRYPTOGRAPHY_IMPORT_ERROR,
        )
    run_check(module, run_tls_expiry)


if __name__ == "__main__":
    main()
