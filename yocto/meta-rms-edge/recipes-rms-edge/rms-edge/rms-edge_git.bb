# nooelint: oelint.var.bbclassextend - a target-only appliance service
SUMMARY = "rms-edge live video appliance supervisor"
DESCRIPTION = "The rms-edge binary (an Azure Media Services v3 / RMS compatible live video \
               edge server) with its systemd units, service account, udev rules, sysctl, \
               journald limits, packet filter and /data layout, installed verbatim from the \
               systemd/ and rootfs/ folders of the same source tree."
HOMEPAGE = "https://example.invalid/rms-edge"
BUGTRACKER = "https://example.invalid/rms-edge/issues"
SECTION = "multimedia"
LICENSE = "Apache-2.0"
# nooelint: oelint.var.licenseremotefile - the tree has no LICENSE file yet (Cargo.toml: Apache-2.0)
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

CVE_PRODUCT = "rms-edge"

# crates/edge-gst links GStreamer 1.22+ (gstreamer-rs, found through pkg-config): core and the app
# library. Everything else comes from the crates (rusqlite bundles SQLite, rustls uses ring).
DEPENDS = "gstreamer1.0 gstreamer1.0-plugins-base"

PV = "0.1.0+git"

# The rms-edge repository itself. CI sets RMS_EDGE_SRCREV to the commit being built (kas env),
# so a release image is reproducible from that commit plus the pinned layers.
RMS_EDGE_GIT_URI ??= "git://example.invalid/rms-edge.git;protocol=https;branch=main"
RMS_EDGE_SRCREV ??= "${AUTOREV}"
SRC_URI = "${RMS_EDGE_GIT_URI}"
SRCREV = "${RMS_EDGE_SRCREV}"

S = "${WORKDIR}/git"

inherit cargo systemd useradd pkgconfig

# Generated from Cargo.lock by yocto/scripts/gen-crates-inc.py (checked in CI). That script is
# the one generator: OE-core's cargo-update-recipe-crates is not inherited, so `bitbake -c
# update_crates` cannot write a second, differently formatted list.
require ${BPN}-crates.inc

# The workspace root is the manifest; build the supervisor binary only, offline against the
# crates listed above (OE-core's cargo class passes --frozen; assert it).
CARGO_SRC_DIR = ""
CARGO_BUILD_FLAGS:append = " --package rms-edge --bin rms-edge"
do_compile:prepend() {
    case " ${CARGO_BUILD_FLAGS} " in
        *" --frozen "*) ;;
        *) bbfatal "CARGO_BUILD_FLAGS lacks --frozen: the build must use exactly Cargo.lock, offline" ;;
    esac
}

# The service account, with the same fields as rootfs/usr/lib/sysusers.d/rms-edge.conf
# (created at build time: the root filesystem is read-only at run time).
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system rms-edge; --system -f render; --system -f video"
USERADD_PARAM:${PN} = "--system --home-dir /data/rms-edge --no-create-home \
                       --shell /sbin/nologin --gid rms-edge --groups render,video \
                       --comment 'rms-edge appliance service' rms-edge"

PACKAGE_BEFORE_PN = "${PN}-firewall ${PN}-mark-good"

SYSTEMD_PACKAGES = "${PN} ${PN}-firewall ${PN}-mark-good"
SYSTEMD_SERVICE:${PN} = "rms-edge.service data.mount"
SYSTEMD_SERVICE:${PN}-firewall = "rms-edge-firewall.service"
SYSTEMD_SERVICE:${PN}-mark-good = "rms-edge-healthcheck.service rms-edge-mark-good.service grubenv.mount"

do_install:append() {
    # Units and the capability drop-in, verbatim from systemd/ (systemd/dev/ is test-only).
    install -d ${D}${systemd_system_unitdir}/rms-edge.service.d
    install -m 0644 ${S}/systemd/*.service ${S}/systemd/*.mount ${D}${systemd_system_unitdir}/
    for f in ${S}/systemd/rms-edge.service.d/*.conf; do
        [ -e "$f" ] && install -m 0644 "$f" ${D}${systemd_system_unitdir}/rms-edge.service.d/
    done

    # rootfs/: verbatim (scripts keep their executable bit).
    (cd ${S}/rootfs && find . -type d) | while read -r dir; do
        install -d -m 0755 ${D}/$dir
    done
    (cd ${S}/rootfs && find . -type f) | while read -r f; do
        if [ -x ${S}/rootfs/$f ]; then mode=0755; else mode=0644; fi
        install -m $mode ${S}/rootfs/$f ${D}/$f
    done
    # The configuration may hold api-key: root and the service group only.
    chmod 0640 ${D}${sysconfdir}/rms-edge/config.toml
    chgrp rms-edge ${D}${sysconfdir}/rms-edge/config.toml

    install -d ${D}/data ${D}/grubenv
    install -D -m 0644 ${S}/docs/image.md ${D}${docdir}/rms-edge/image.md
}

FILES:${PN}-firewall += "\
    ${sysconfdir}/rms-edge/nftables.conf \
    ${systemd_system_unitdir}/rms-edge-firewall.service \
"
FILES:${PN}-mark-good += "\
    ${libexecdir}/rms-edge/healthcheck \
    ${systemd_system_unitdir}/rms-edge-healthcheck.service \
    ${systemd_system_unitdir}/rms-edge-mark-good.service \
    ${systemd_system_unitdir}/grubenv.mount \
    /grubenv \
"
FILES:${PN} += "\
    /data \
    ${nonarch_libdir}/sysusers.d \
    ${nonarch_libdir}/tmpfiles.d \
    ${nonarch_base_libdir}/udev/rules.d \
    ${nonarch_libdir}/sysctl.d \
    ${nonarch_libdir}/modules-load.d \
    ${systemd_unitdir}/journald.conf.d \
    ${systemd_unitdir}/system.conf.d \
    ${systemd_system_unitdir} \
"
CONFFILES:${PN} = "${sysconfdir}/rms-edge/config.toml"

# The transcode worker's elements (crates/edge-gst/src/pipeline.rs): appsrc/appsink, parsers,
# decoders, scaling and rate conversion, the software H.264 encoder (x264enc: the fallback) and
# the AAC encoder. Hardware encoders are optional: the probe picks va/vaapi/v4l2 when present.
# Thumbnails (crates/edge-gst/src/thumbnail.rs): jpegenc, and decodebin for capture devices.
RDEPENDS:${PN} = "\
    gstreamer1.0 \
    gstreamer1.0-libav \
    gstreamer1.0-plugins-bad-videoparsersbad \
    gstreamer1.0-plugins-base-app \
    gstreamer1.0-plugins-base-audioconvert \
    gstreamer1.0-plugins-base-audiorate \
    gstreamer1.0-plugins-base-audioresample \
    gstreamer1.0-plugins-base-playback \
    gstreamer1.0-plugins-base-videoconvertscale \
    gstreamer1.0-plugins-base-videorate \
    gstreamer1.0-plugins-good-audioparsers \
    gstreamer1.0-plugins-good-jpeg \
    gstreamer1.0-plugins-ugly-x264 \
"
RDEPENDS:${PN}-firewall = "nftables"
RDEPENDS:${PN}-mark-good = "curl"
RRECOMMENDS:${PN} = "${PN}-firewall ${PN}-mark-good kernel-module-videodev"
RRECOMMENDS:${PN}:append = " gstreamer1.0-plugins-bad-va gstreamer1.0-plugins-good-video4linux2"
