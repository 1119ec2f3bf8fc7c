from compressctl.cli import main

main()
