# nooelint: oelint.var.bbclassextend - deployed boot images, target only
SUMMARY = "rms-edge EFI boot partition and grub environment for A/B boot"
DESCRIPTION = "Builds the two vfat images the wic layout copies in: the EFI system \
               partition (grub-efi with the RAUC A/B selection script) and the grubenv \
               partition with the initial environment (slot A good, order A B)."
HOMEPAGE = "https://example.invalid/rms-edge"
BUGTRACKER = "https://example.invalid/rms-edge/issues"
SECTION = "bootloaders"
CVE_PRODUCT = ""
LICENSE = "MIT"
# nooelint: oelint.var.licenseremotefile - layer-local files only, licensed as the layer (MIT)
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = "file://grub.cfg"

inherit deploy nopackages

COMPATIBLE_HOST = "(x86_64|i.86).*-linux"

do_configure[noexec] = "1"
do_compile[noexec] = "1"
do_install[noexec] = "1"

do_deploy[depends] += " \
    dosfstools-native:do_populate_sysroot \
    mtools-native:do_populate_sysroot \
    grub-native:do_populate_sysroot \
    grub-efi:do_deploy \
"

do_deploy() {
    efidir="${WORKDIR}/efi-boot"
    rm -rf "$efidir"
    install -d "$efidir/EFI/BOOT"
    install -m 0644 ${WORKDIR}/grub.cfg "$efidir/EFI/BOOT/grub.cfg"
    install -m 0644 ${DEPLOY_DIR_IMAGE}/grub-efi-bootx64.efi "$efidir/EFI/BOOT/bootx64.efi"
    rm -f ${DEPLOYDIR}/rms-edge-efi-boot.vfat
    mkdosfs -n EFI -S 512 -C ${DEPLOYDIR}/rms-edge-efi-boot.vfat 32768
    mcopy -i ${DEPLOYDIR}/rms-edge-efi-boot.vfat -s "$efidir"/* ::/

    grub-editenv ${WORKDIR}/grubenv create
    grub-editenv ${WORKDIR}/grubenv set ORDER="A B" A_OK=1 B_OK=0 A_TRY=0 B_TRY=0
    rm -f ${DEPLOYDIR}/rms-edge-grubenv.vfat
    mkdosfs -n GRUBENV -S 512 -C ${DEPLOYDIR}/rms-edge-grubenv.vfat 4096
    mcopy -i ${DEPLOYDIR}/rms-edge-grubenv.vfat ${WORKDIR}/grubenv ::/grubenv
}

addtask deploy after do_install before do_build
