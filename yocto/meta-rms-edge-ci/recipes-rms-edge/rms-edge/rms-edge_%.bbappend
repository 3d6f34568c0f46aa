# Only with DISTRO_FEATURES "rms-edge-test-hooks" (kas/opt/dev.yml).
require ${@bb.utils.contains('DISTRO_FEATURES', 'rms-edge-test-hooks', 'rms-edge-test-hooks.inc', '', d)}
