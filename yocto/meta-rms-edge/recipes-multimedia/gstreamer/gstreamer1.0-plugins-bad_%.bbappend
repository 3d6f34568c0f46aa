# Only with DISTRO_FEATURES "rms-edge": adding the layer alone changes nothing.
require ${@bb.utils.contains('DISTRO_FEATURES', 'rms-edge', 'gstreamer1.0-plugins-bad-rms-edge.inc', '', d)}
