# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by the k8s modules: the connection and the target."""

from __future__ import annotations


class ModuleDocFragment:
    """Connection options named as in kubernetes.core, and the workload options."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - The kubeconfig to use, as a path or as a mapping with its content.
      - The tokens, passwords and key data of a mapping are masked in the task's
        output and never appear in a result.
      - When none of O(kubeconfig), O(context) and O(host) is set, the pod's service
        account is used inside a cluster, else the file named by E(KUBECONFIG) or
        C(~/.kube/config), as kubectl does.
      - Read from E(K8S_AUTH_KUBECONFIG) when not set.
    type: raw
  context:
    description:
      - The kubeconfig context to use instead of its current context.
      - Read from E(K8S_AUTH_CONTEXT) when not set.
    type: str
  host:
    description:
      - The URL of the API server, for example V(https://k8s.example.org:6443).
        It replaces the kubeconfig's server address.
      - When set without O(kubeconfig) and O(context), no kubeconfig is read; give
        the credentials with O(api_key) or O(client_cert) and O(client_key).
      - Read from E(K8S_AUTH_HOST) when not set.
    type: str
  api_key:
    description:
      - A bearer token for the API server, such as a service account token.
      - Read from E(K8S_AUTH_API_KEY) when not set.
    type: str
  validate_certs:
    description:
      - Verify the API server's TLS certificate. When not set, the kubeconfig's
        setting applies, which verifies unless it says otherwise.
      - Read from E(K8S_AUTH_VALIDATE_CERTS) or E(K8S_AUTH_VERIFY_SSL) when not
        set.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - A PEM file of the CA certificates that signed the API server's certificate.
      - Read from E(K8S_AUTH_CA_CERT) or E(K8S_AUTH_SSL_CA_CERT) when not set.
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - A PEM client certificate to authenticate with.
      - Read from E(K8S_AUTH_CLIENT_CERT) or E(K8S_AUTH_CERT_FILE) when not set.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - The private key of O(client_cert), as a PEM file.
      - Read from E(K8S_AUTH_CLIENT_KEY) or E(K8S_AUTH_KEY_FILE) when not set.
    type: path
    aliases: [key_file]
  request_timeout:
    description:
      - Seconds to wait for the connection and for each read of an answer of the
        API server.
    type: float
    default: 10.0
  namespace:
    description:
      - The namespace of the workload and its pods.
    type: str
    required: true
  kind:
    description:
      - The kind of workload O(name) names.
    type: str
    choices: [Deployment, StatefulSet]
    default: Deployment
  name:
    description:
      - The name of the workload.
      - Exactly one of O(name) and O(label_selectors) is required.
    type: str
requirements:
  - kubernetes (the official Kubernetes Python client)
"""
