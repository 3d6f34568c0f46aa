# nooelint: oelint.var.bbclassextend oelint.var.mandatoryvar.SRC_URI - an update bundle, target only; the bundle class takes its input from RAUC_SLOT_*
SUMMARY = "rms-edge update bundle (RAUC)"
DESCRIPTION = "Signed RAUC bundle carrying the rms-edge-image root filesystem (with its \
               kernel) for the inactive slot; installed with rauc install, confirmed by \
               rms-edge-mark-good.service after the health gate, rolled back by grub \
               otherwise."
HOMEPAGE = "https://example.invalid/rms-edge"
BUGTRACKER = "https://example.invalid/rms-edge/issues"
SECTION = "images"
CVE_PRODUCT = ""
LICENSE = "MIT"

inherit bundle

RAUC_BUNDLE_COMPATIBLE = "rms-edge-${MACHINE}"
RAUC_BUNDLE_VERSION = "${DISTRO_VERSION}"
RAUC_BUNDLE_DESCRIPTION = "rms-edge appliance ${DISTRO_VERSION}"
RAUC_BUNDLE_FORMAT = "verity"
RAUC_BUNDLE_SLOTS = "rootfs"
RAUC_SLOT_rootfs = "rms-edge-image"
RAUC_SLOT_rootfs[fstype] = "ext4"
RAUC_SLOT_rootfs[adaptive] = "block-hash-index"

# Signing material: never in this repository. CI passes the paths (kas env / local.conf):
#   RAUC_KEY_FILE, RAUC_CERT_FILE; the dev fragment (kas/opt/dev.yml) uses throw-away keys.
