SUMMARY = "rms-edge appliance image"
DESCRIPTION = "Read-only root filesystem with systemd, the rms-edge supervisor, its \
               GStreamer runtime and the machine's hardware codecs; /data is a separate \
               partition. Packed by wic as an A/B layout (two root slots, a grub environment, \
               /data) for RAUC updates."
HOMEPAGE = "https://example.invalid/rms-edge"
BUGTRACKER = "https://example.invalid/rms-edge/issues"
SECTION = "images"
CVE_PRODUCT = ""
LICENSE = "MIT"

inherit core-image

IMAGE_FEATURES += "read-only-rootfs"

# MACHINE_HWCODECS: the machine's hardware codec stack (meta-intel: intel-media-driver and
# friends for VAAPI); empty on machines without one (qemux86-64).
IMAGE_INSTALL = "\
    packagegroup-core-boot \
    rms-edge \
    rms-edge-firewall \
    rms-edge-mark-good \
    packagegroup-rms-edge-media \
    ${MACHINE_HWCODECS} \
    ${@bb.utils.contains('DISTRO_FEATURES', 'rauc', 'rauc grub-editenv', '', d)} \
    kernel-image \
    e2fsprogs-e2fsck \
    ca-certificates \
    tzdata \
"

# The kernel is read from the booted slot (/boot/bzImage) so that kernel and rootfs update
# together (see dynamic-layers/rauc/recipes-bsp/rms-edge-boot).
IMAGE_FSTYPES = "ext4 wic"
WKS_FILE = "rms-edge-ab.wks.in"
WKS_FILE_DEPENDS:append = " ${@bb.utils.contains('DISTRO_FEATURES', 'rauc', 'rms-edge-boot', '', d)}"
IMAGE_ROOTFS_SIZE ?= "1048576"
IMAGE_OVERHEAD_FACTOR = "1.2"
