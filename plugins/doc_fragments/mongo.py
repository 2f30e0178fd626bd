# Copyright: trm.maintenance contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by the MongoDB modules: how they connect."""

from __future__ import annotations


class ModuleDocFragment:
    """The connection options of the MongoDB modules."""

    DOCUMENTATION = r"""
options:
  uri:
    description:
      - A MongoDB connection string, V(mongodb://) or V(mongodb+srv://), with one
        host, a host list or a replica set, and any of the driver's URI options.
      - A password written into the URI is masked in every result and log line;
        prefer O(login_password), which is never shown.
      - Mutually exclusive with O(login_host) and O(replica_set).
    type: str
  login_host:
    description:
      - The host to connect to when O(uri) is not set. Defaults to V(localhost).
    type: str
  login_port:
    description:
      - The port to connect to when O(uri) is not set.
    type: int
    default: 27017
  login_user:
    description:
      - The user to authenticate as. Also applies to a O(uri) without credentials.
    type: str
  login_password:
    description:
      - The password of O(login_user).
    type: str
  login_database:
    description:
      - The database that holds O(login_user) (the authentication source).
    type: str
    default: admin
  auth_mechanism:
    description:
      - The authentication mechanism; by default the driver negotiates one with
        the server.
    type: str
    choices: [SCRAM-SHA-256, SCRAM-SHA-1, MONGODB-X509, GSSAPI, PLAIN, MONGODB-AWS]
  replica_set:
    description:
      - The replica set name, when connecting to O(login_host) as a member of a set.
    type: str
  direct_connection:
    description:
      - Talk to O(login_host) itself rather than discover its replica set and use
        the primary. Use it to check one particular member.
    type: bool
    default: false
  tls:
    description:
      - Connect with TLS.
    type: bool
    default: false
    aliases: [ssl]
  validate_certs:
    description:
      - Verify the server's TLS certificate and host name.
      - Turn this off only for a server whose certificate cannot be trusted yet;
        prefer O(ca_certs).
    type: bool
    default: true
  ca_certs:
    description:
      - A PEM file of CA certificates to trust instead of the system's.
    type: path
    aliases: [ssl_ca_certs, tls_ca_file]
  client_cert_file:
    description:
      - A PEM file holding the client certificate and its private key, for
        MONGODB-X509 authentication or servers that require client certificates.
    type: path
    aliases: [ssl_certfile, tls_certificate_key_file]
  client_cert_password:
    description:
      - The password of the private key in O(client_cert_file).
    type: str
    aliases: [ssl_pem_passphrase]
  server_selection_timeout:
    description:
      - Seconds to wait for a server to answer before the server counts as
        unreachable, which is a critical finding.
    type: float
    default: 5.0
  connect_timeout:
    description:
      - Seconds to wait for a TCP and TLS connection.
    type: float
    default: 5.0
  socket_timeout:
    description:
      - Seconds to wait for the answer to each command. Commands also carry it to
        the server as C(maxTimeMS), so the server stops work that nobody waits for.
    type: float
    default: 30.0
requirements:
  - pymongo >= 4.6 on the host that runs the module (usually the controller).
notes:
  - The module opens one client for the whole call and closes it at the end.
  - An unreachable server, rejected credentials or a refused command are findings
    (V(critical), V(unknown) and V(unknown)), not task failures; an invalid
    O(uri) fails the task.
"""
