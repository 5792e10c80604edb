from galaxy_explorer.cli import main

raise SystemExit(main())
