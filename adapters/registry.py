"""Which driver pushes to a device, chosen from what discovery found on it.

A device that answered NETCONF gets the NETCONF driver (candidate datastore, confirmed
commit); a device that answered the SSH CLI gets the CLI driver for its platform. The
credentials come from the device's remembered credential profile.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from adapters.base import ConfigDriver, DriverTarget
from topology.credentials import CredentialStore
from topology.errors import ConfigPushError, CredentialError
from topology.inventory import Device

__all__ = ["DriverChoice", "choose_driver", "cli_platform_for", "netconf_builders"]

DriverChoice = tuple[str, str, Callable[[DriverTarget], ConfigDriver], DriverTarget]
"""(driver kind, platform for the service templates, factory, target)."""


def cli_platform_for(device: Device) -> str:
    """The CLI platform (collectors/data/cli_platforms.yaml) whose OS name the device
    reported; FRR when nothing says otherwise."""
    from collectors.cli import cli_platforms

    for name, platform in cli_platforms().items():
        if device.os_name and platform.os_name.lower() == device.os_name.lower():
            return name
    return "frr"


def netconf_builders() -> dict[str, Callable[..., str]]:
    """The NETCONF services' XML builders by the name services.yaml uses."""
    from adapters.netconf import interface_config, interface_removal

    def interface_service(interface: str, description: str, address: str | None = None) -> str:
        ipv4: list[tuple[str, int]] = []
        if address is not None:
            ip, _, length = address.partition("/")
            ipv4.append((ip, int(length)))
        return interface_config(interface, description=description, enabled=True, ipv4=ipv4)

    def interface_service_removal(interface: str, description: str,
                                  address: str | None = None) -> str:
        ip = address.partition("/")[0] if address is not None else None
        return interface_removal(interface, description=True, ipv4=[ip] if ip else [])

    return {"interface_config": interface_service,
            "interface_removal": interface_service_removal}


def choose_driver(device: Device, store: CredentialStore | None = None, *,
                  timeout_s: float = 30.0) -> DriverChoice:
    """The driver for ``device`` (``ConfigPushError`` when it has no plane to push on)."""
    planes = set(device.planes.split(",")) if device.planes else set()
    if not device.mgmt_address:
        raise ConfigPushError(f"{device.name} has no management address in the inventory",
                              device=device.name, operation="choose driver")
    if not device.credential_profile:
        raise ConfigPushError(f"{device.name} has no credential profile remembered; run "
                              "discovery with one", device=device.name,
                              operation="choose driver")
    try:
        profile = (store or CredentialStore()).load(device.credential_profile)
    except CredentialError as exc:
        raise ConfigPushError(f"{device.name}: {exc}", device=device.name,
                              operation="choose driver") from None
    if "netconf" in planes and profile.netconf_username and profile.netconf_password:
        from adapters.netconf import NetconfDriver

        target = DriverTarget(device.name, device.mgmt_address, profile.netconf_username,
                              SecretStr(profile.netconf_password.get_secret_value()), 830,
                              "netconf", profile.name, timeout_s)
        return "netconf", "netconf", NetconfDriver, target
    if "cli" in planes and profile.ssh_username and profile.ssh_password:
        from adapters.cli import CliDriver

        platform = cli_platform_for(device)
        target = DriverTarget(device.name, device.mgmt_address, profile.ssh_username,
                              SecretStr(profile.ssh_password.get_secret_value()), 22,
                              platform, profile.name, timeout_s)
        return "cli", platform, CliDriver, target
    raise ConfigPushError(
        f"{device.name} answered no plane a driver pushes on (planes: "
        f"{device.planes or 'none'}; NETCONF or the SSH CLI with credentials are needed)",
        device=device.name, operation="choose driver")
