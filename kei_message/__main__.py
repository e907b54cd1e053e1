from kei_message.cli import main

main()
