# Only with DISTRO_FEATURES "rms-edge": adding the layer alone changes nothing.
require ${@bb.utils.contains('DISTRO_FEATURES', 'rms-edge', 'rauc-conf-rms-edge.inc', '', d)}
