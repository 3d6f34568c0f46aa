"""VAAPI: the service can reach the render node and the GStreamer VA elements are usable."""
import pytest


@pytest.mark.ssh
@pytest.mark.vaapi
def test_render_node_access(target):
    nodes = target.ssh("ls /dev/dri/renderD*").stdout.split()
    assert nodes
    for n in nodes:
        assert target.ssh(f"stat -c %G:%a {n}").stdout.strip() == "render:660"
    # The service's own sandbox (DevicePolicy=closed + DeviceAllow=char-drm) lets it open the node.
    target.run_in_service_sandbox(f"exec 3<>{nodes[0]}")
    # The modesetting nodes are not the service's business.
    for card in target.ssh("ls /dev/dri/card* 2>/dev/null", check=False).stdout.split():
        assert target.run_in_service_sandbox(f"exec 3<>{card}", check=False).returncode != 0, card
    links = target.ssh("ls /dev/rms-edge/render/", check=False).stdout.split()
    assert links, "udev rule 70-rms-edge.rules did not create /dev/rms-edge/render/<path>"


@pytest.mark.ssh
@pytest.mark.vaapi
def test_va_encoder_registered(target):
    if not target.ssh_ok("command -v gst-inspect-1.0"):
        pytest.skip("gst-inspect-1.0 not in the image")
    out = target.ssh("runuser -u rms-edge -- gst-inspect-1.0 va 2>&1", check=False).stdout
    assert "vah264enc" in out or "vah264lpenc" in out, out[-2000:]
