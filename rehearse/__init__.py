"""The AWS deployment rehearsed on a private ministack: `make rehearse` (`python -m rehearse`).

The SAM stack of infra/ is built for this host, deployed with `sam deploy` to a ministack
on loopback, and driven through the README's "Deploy to AWS" order of operations with the
`dualwrite` command. Where the emulator falls short, a copy of the built template is adapted
(adapt.py) and every adaptation is printed as "not rehearsed: ...". A dev tool: it uses the
dev dependencies and the virtualenvs it makes under .bench/."""
