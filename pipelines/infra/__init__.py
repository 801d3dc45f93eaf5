"""The secure environment (infra/secure-environment.yaml): its template read and rendered (``template``), and its
CloudFormation stack deployed, described and deleted, whose outputs ``--stack-name`` reads (``stacks``)."""
