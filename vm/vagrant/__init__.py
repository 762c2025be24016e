"""The suite inside Vagrant machines, one per kernel (`vagrant up && pytest -n auto`).

Optional: the direct-boot runner (vm/runner.py) never imports this package.
  config.py   where the prepared machines are recorded (read by the Vagrantfile too)
  setup.py    `vagrant/setup`: packages, box, kernels, initrds, libvirtd in its netns
  netns.py    the project's libvirtd inside its own network namespace; `vagrant/stop`
  box.py      the locally built Debian box (no box registry is needed)
  initrd.py   per-kernel initrd that loads virtio_blk/virtio_net and boots the box's root
  machines.py python-vagrant: status, ssh, running the selection in one machine
  plugin.py   pytest plugin: while the machines run, `pytest` runs inside them
"""
