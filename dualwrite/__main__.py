from dualwrite.cli.app import main

main()
