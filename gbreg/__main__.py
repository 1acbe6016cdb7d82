from gbreg.cli import main

main()
