from dockyard.cli import main

main()
