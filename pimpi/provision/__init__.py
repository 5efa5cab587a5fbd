"""What provisioning (ansible/) runs on the controller: the nodes' wheelhouse and the archives sent to them."""
