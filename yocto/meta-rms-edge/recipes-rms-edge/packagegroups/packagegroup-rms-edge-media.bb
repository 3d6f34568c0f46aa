SUMMARY = "GStreamer runtime for rms-edge"
DESCRIPTION = "GStreamer plugins rms-edge builds its pipelines from: the software path \
               (x264, libav, AAC), MPEG-TS/FLV/MP4 muxers, RTSP/SRT/RTMP elements and the VA \
               plugin whose encoders are used when the machine provides a VAAPI driver \
               (MACHINE_HWCODECS)."
HOMEPAGE = "https://example.invalid/rms-edge"
BUGTRACKER = "https://example.invalid/rms-edge/issues"
SECTION = "multimedia"
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = "\
    gstreamer1.0 \
    gstreamer1.0-libav \
    gstreamer1.0-plugins-bad-mpegtsdemux \
    gstreamer1.0-plugins-bad-mpegtsmux \
    gstreamer1.0-plugins-bad-rtmp2 \
    gstreamer1.0-plugins-bad-srt \
    gstreamer1.0-plugins-bad-va \
    gstreamer1.0-plugins-bad-videoparsersbad \
    gstreamer1.0-plugins-base-app \
    gstreamer1.0-plugins-base-audioconvert \
    gstreamer1.0-plugins-base-audioresample \
    gstreamer1.0-plugins-base-audiotestsrc \
    gstreamer1.0-plugins-base-playback \
    gstreamer1.0-plugins-base-typefindfunctions \
    gstreamer1.0-plugins-base-videoconvertscale \
    gstreamer1.0-plugins-base-videotestsrc \
    gstreamer1.0-plugins-good-flv \
    gstreamer1.0-plugins-good-isomp4 \
    gstreamer1.0-plugins-good-jpeg \
    gstreamer1.0-plugins-good-rtp \
    gstreamer1.0-plugins-good-rtsp \
    gstreamer1.0-plugins-good-udp \
    gstreamer1.0-plugins-good-video4linux2 \
    gstreamer1.0-plugins-ugly-x264 \
    gstreamer1.0-rtsp-server \
"
