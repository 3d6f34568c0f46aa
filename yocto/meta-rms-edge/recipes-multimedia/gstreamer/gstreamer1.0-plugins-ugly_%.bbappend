# Only with DISTRO_FEATURES "rms-edge": adding the layer alone changes nothing.
require ${@bb.utils.contains('DISTRO_FEATURES', 'rms-edge', 'gstreamer1.0-plugins-ugly-rms-edge.inc', '', d)}
