"""What a client's ``target`` may be, and the port one without a port means.

A gRPC target is ``host:port`` (``127.0.0.1:50051``, ``[::1]:50051``, ``affect.internal:50051``) or
one of gRPC's own schemes (its ``doc/naming.md``): ``dns:///host:port``, ``ipv4:addr:port``,
``ipv6:[addr]:port``, ``unix:path``, ``unix-abstract:name``, ``vsock:cid:port``. gRPC gives a host
without a port its own default, 443; this client gives it affect's, ``DEFAULT_PORT`` (50051), as the
server listens on and the default target says. A URL (``http://``, ``https://``, ``grpc://``) is no
gRPC target: gRPC reads it as a host name that does not resolve, so it is refused here, saying what
to write instead.
"""

from __future__ import annotations

import ipaddress
import re

from affect_client import _constants as C

# gRPC's schemes (its naming doc; xds and google-c2p are its resolvers' too): kept as they are.
_GRPC_SCHEMES = frozenset({"dns", "unix", "unix-abstract", "ipv4", "ipv6", "vsock", "xds", "google-c2p"})
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")
_TLS_SCHEMES = frozenset({"https", "grpcs"})


def target_problem(target: str) -> str | None:
    """Why ``target`` cannot be a gRPC target (a URL whose scheme is not gRPC's), or None."""
    url = _URL.match(target)
    if not url or url.group(1).lower() in _GRPC_SCHEMES:
        return None
    scheme, rest = url.group(1).lower(), url.group(2)
    address = rest.split("/", 1)[0].rsplit("@", 1)[-1]  # no path, no user
    tls = scheme in _TLS_SCHEMES
    if address and not _has_port(address) and tls:
        address = f"{address}:443"  # an https URL without a port is port 443: keep what it meant
    instead = repr(with_default_port(address)) if address else "host:port"
    return (f"target must be a gRPC target, host:port (such as {C.DEFAULT_TARGET}), not a URL: got {target!r}; "
            f"write {instead} {'with tls=True' if tls else '(and tls=True for TLS)'}")


def with_default_port(target: str) -> str:
    """``target`` with ``DEFAULT_PORT`` after each host that has no port (``127.0.0.1`` ->
    ``127.0.0.1:50051``, ``dns:///affect`` -> ``dns:///affect:50051``, ``::1`` -> ``[::1]:50051``);
    a target of another kind (``unix:``, ``vsock:``) as it is."""
    prefix, addresses = _split(target)
    if addresses is None:
        return target
    return prefix + ",".join(address if _has_port(address) else _ported(address) for address in addresses.split(","))


def is_loopback(target: str) -> bool:
    """Whether ``target`` is this machine: a unix socket, or every host it names a loopback one."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    _, addresses = _split(target)
    return addresses is not None and all(_is_loopback_host(_host(address)) for address in addresses.split(","))


def _split(target: str) -> tuple[str, str | None]:
    """The scheme's part of ``target`` and its addresses (``host[:port]``, comma-separated for
    ``ipv4:``/``ipv6:``), or None for a target that names no host (``unix:``, ``vsock:``)."""
    if target.startswith(("ipv4:", "ipv6:")):
        return target[:5], target[5:]
    if target.startswith("dns:"):
        rest = target[4:]
        if rest.startswith("//"):  # dns://[authority]/host[:port]
            slash = rest.find("/", 2)
            return (target, None) if slash < 0 else (target[:4 + slash + 1], rest[slash + 1:])
        return "dns:", rest
    scheme = target.split(":", 1)[0]
    if scheme in _GRPC_SCHEMES or _URL.match(target):
        return target, None
    return "", target


def _has_port(address: str) -> bool:
    if address.startswith("["):
        return "]:" in address and not address.endswith("]:")
    return address.count(":") == 1 and not address.endswith(":")


def _ported(address: str) -> str:
    """``address`` (a host, with no port) with ``DEFAULT_PORT``; a bare IPv6 address bracketed."""
    host = address.rstrip(":") if address.count(":") == 1 else address
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{C.DEFAULT_PORT}"


def _host(address: str) -> str:
    if address.startswith("["):  # [::1]:port
        return address[1:address.find("]")]
    if address.count(":") == 1:  # host:port
        return address.rsplit(":", 1)[0]
    return address  # a bare host or IPv6 address


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
