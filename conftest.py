"""Wires the layers together: helpers/ talks to the kernel, suites/ states
behaviour, harness/ holds the pytest plugins (forked isolation, feature probes,
upstream parity, known defects, KTAP), vm/ boots kernels and runs the suite
(vm/vagrant/: or runs it in this project's Vagrant machines)."""
pytest_plugins = [
    "harness.features",   # before isolation, which imports it
    "harness.isolation",
    "harness.cleanup",    # the defer fixture
    "harness.disruptive", # --disruptive and the disruptive marker
    "harness.alone",      # the alone marker: runs last, nothing beside it
    "harness.upstream",
    "harness.defects",
    "harness.ktap",
    "vm.plugin",
    "vm.vagrant.plugin",  # inert unless this project's Vagrant machines exist
]
